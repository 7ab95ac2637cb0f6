// Signals a receiving hub sends to a partner on a connection of its own, after it answered the message itself: an
// ebMS 2.0 Acknowledgment asked for without SyncReply, an AS4 Receipt or Error signal under a P-Mode whose replies are
// asynchronous. Each is POSTed in the background and sent again on the delivery backoff while the partner is
// unreachable or answers 5xx, 408 or 429, at most as often as a delivery is attempted. They are not kept across a
// restart: the partner's own resends (reliable messaging, reception awareness) cover a reply lost so, as the hub
// answers the repeat of a message with the reply stored for it.
import type { Agent } from 'node:https';
import { SwxError } from './errors.ts';
import { postHttps } from './http.ts';
import { log } from './log.ts';

export interface SeparateReply {
  /** The partner it goes to and the message it answers, for the log. */
  partner: string;
  refToMessageId: string;
  /** What it is, for the log: "ebMS Acknowledgment", "AS4 Receipt". */
  what: string;
  url: URL;
  agent: Agent;
  headers: Record<string, string>;
  body: Buffer;
}

export interface SeparateReplyOptions {
  /** The waits between sends (delivery.backoffMs); the last repeats. */
  backoffMs: readonly number[];
  /** Sends at most (delivery.maxAttempts). */
  maxAttempts: number;
  /** One send's deadline (delivery.timeoutMs). */
  timeoutMs: number;
}

/** The largest answer read to a signal: an MSH answers one with nothing, or a short signal of its own. */
const maxAnswerBytes = 1024 * 1024;

/**
 * Replies waiting to be sent again, at most: a partner that stays down while its messages keep coming would otherwise
 * hold every reply in memory. Beyond it a reply is dropped, as after its last attempt: the partner's resend gets it.
 */
const maxWaiting = 10_000;

/** A failure that passes with time: the partner unreachable, overloaded or failing itself. */
const passing = (status: number) => status >= 500 || status === 408 || status === 429;

export class SeparateReplies {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<AbortController>();
  private stopped = false;

  constructor(private readonly options: SeparateReplyOptions) {}

  /** Sends `reply` in the background; resolves once the first send settled (delivered, failed for good, or to be sent again). */
  send(reply: SeparateReply): Promise<void> {
    return this.attempt(reply, 1);
  }

  private async attempt(reply: SeparateReply, attempt: number): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.running.add(abort);
    const timeout = setTimeout(() => abort.abort(), this.options.timeoutMs);
    let failure: { again: boolean; detail: string } | undefined;
    try {
      const answer = await postHttps(reply.url, { headers: { ...reply.headers, 'content-length': String(reply.body.length) }, agent: reply.agent, signal: abort.signal }, reply.body, maxAnswerBytes);
      if (answer.status < 200 || answer.status >= 300) failure = { again: passing(answer.status), detail: `answered ${answer.status}` };
    } catch (error) {
      // An answer too large or cut off is the partner's fault, not an outage: sending again would not change it.
      failure = { again: !(error instanceof SwxError), detail: (error as Error).message };
    } finally {
      clearTimeout(timeout);
      this.running.delete(abort);
    }
    const facts = { partner: reply.partner, refTo: reply.refToMessageId, url: reply.url.origin, attempt };
    if (!failure) return;
    if (!failure.again || attempt >= this.options.maxAttempts || this.stopped || this.timers.size >= maxWaiting) {
      log.warn({ ...facts, detail: failure.detail }, `the ${reply.what} could not be sent to the partner; its resend of the message will get it again`);
      return;
    }
    const waitMs = this.options.backoffMs[Math.min(attempt - 1, this.options.backoffMs.length - 1)] ?? 1_000;
    log.info({ ...facts, detail: failure.detail, waitMs }, `the ${reply.what} goes to the partner again`);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(reply, attempt + 1);
    }, waitMs);
    this.timers.add(timer);
  }

  /** Stops sending: waiting sends are dropped, running ones cut. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const abort of this.running) abort.abort();
    this.running.clear();
  }
}
