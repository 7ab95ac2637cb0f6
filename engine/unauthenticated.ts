// Refusals before authentication are counted, not evidenced one by one: a client without a registered certificate
// can send as fast as TLS lets it, and a record per request would let it grow the evidence store at will. Each hub
// process writes one record per source address, minute and code, with the count, the first and last time and one
// sample request, when the minute is over (and at stop).
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from './errors.ts';
import type { EvidenceLog } from './evidence.ts';
import { log } from './log.ts';
import type { Unauthenticated } from './peer.ts';

/** Source addresses counted apart per minute; beyond them one overflow count takes the rest, so memory stays bounded. */
export const maxSourcesPerMinute = 256;
/** Where requests from addresses beyond the cap are counted. */
export const overflowSource = 'other';
/** A sample keeps the first fields given (already validated by the connector), each cut to a length. */
const sampleFields = 12;
const sampleValueChars = 200;
/** Closed minutes kept while the evidence stream does not take them: ten minutes of outage, then they are dropped. */
const maxPendingMinutes = 10;
/** How often closed minutes are written: a record is at most this late after its minute. */
const flushIntervalMs = 5_000;

interface Tally {
  /** The record's id, fixed at the first count: a write retried after a lost ack is de-duplicated by the stream. */
  id: string;
  messageId: string;
  source: string;
  code: ErrorCode;
  count: number;
  first: number;
  last: number;
  sample: Record<string, string>;
}

interface Minute { sources: Set<string>; tallies: Map<string, Tally> }

const minuteOf = (ms: number) => ms - (ms % 60_000);
/** The minute as written in records and ids: 2026-05-01T12:03 (UTC). */
const minuteText = (minute: number) => new Date(minute).toISOString().slice(0, 16);

function bounded(sample: Record<string, string | undefined>, certificate: string): Record<string, string> {
  const kept = Object.entries(sample).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '');
  if (certificate) kept.push(['certificate', certificate]);
  return Object.fromEntries(kept.slice(0, sampleFields).map(([name, value]) => [name, value.slice(0, sampleValueChars)]));
}

export class UnauthenticatedRefusals {
  /** Open and not yet written minutes, oldest first (a Map keeps insertion order). */
  private readonly minutes = new Map<number, Minute>();
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly evidence: Pick<EvidenceLog, 'record' | 'publish'>, private readonly now: () => number = Date.now) {}

  /**
   * Counts a refusal; `sample` holds only values the connector validated. Returns the id of the record that will
   * hold the count, which the refusal names.
   */
  count(refusal: Unauthenticated, sample: Record<string, string | undefined>): string {
    const at = this.now();
    const minute = minuteOf(at);
    let window = this.minutes.get(minute);
    if (!window) this.minutes.set(minute, window = { sources: new Set(), tallies: new Map() });
    const source = window.sources.has(refusal.source) || window.sources.size < maxSourcesPerMinute ? refusal.source : overflowSource;
    window.sources.add(source);
    const key = `${source} ${refusal.code}`;
    let tally = window.tallies.get(key);
    if (!tally) {
      const messageId = `refused:${minuteText(minute)}:${refusal.code}:${source}`;
      tally = { id: randomUUID(), messageId, source, code: refusal.code, count: 0, first: at, last: at, sample: bounded(sample, refusal.certificate) };
      window.tallies.set(key, tally);
    }
    tally.count++;
    tally.last = at;
    return tally.messageId;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), flushIntervalMs);
    this.timer.unref();
  }

  /** Writes every count, the current minute's too: after this, nothing is held. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }

  /** Writes the minutes that are over (all of them with `everything`), one after the other. */
  flush(everything = false): Promise<void> {
    const run = this.writing.then(() => this.write(everything));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async write(everything: boolean): Promise<void> {
    const current = minuteOf(this.now());
    for (const [minute, window] of this.minutes) {
      if (!everything && minute >= current) break;
      try {
        for (const [key, tally] of window.tallies) {
          await this.evidence.publish([this.record(minute, tally)]);
          window.tallies.delete(key);
        }
        this.minutes.delete(minute);
      } catch (error) {
        log.error({ err: error, minute: minuteText(minute) }, 'refusals before authentication not evidenced yet; retrying');
        break;
      }
    }
    for (const [minute, window] of this.minutes) {
      if (this.minutes.size <= maxPendingMinutes) break;
      const lost = [...window.tallies.values()].reduce((sum, tally) => sum + tally.count, 0);
      log.error({ minute: minuteText(minute), refusals: lost }, 'refusals before authentication dropped unevidenced: the evidence stream did not take them');
      this.minutes.delete(minute);
    }
  }

  private record(minute: number, tally: Tally) {
    const { source, count, sample } = tally;
    const [first, last] = [new Date(tally.first).toISOString(), new Date(tally.last).toISOString()];
    return this.evidence.record({
      id: tally.id,
      messageId: tally.messageId,
      conversationId: tally.messageId,
      stage: 'refused_unauthenticated',
      at: first,
      // Never attributed to an agency: no certificate said who sent these.
      from: '',
      to: '',
      service: '',
      action: '',
      protocol: sample.protocol ?? '',
      code: tally.code,
      detail: JSON.stringify({ source, minute: minuteText(minute), count, first, last, sample }),
    });
  }
}
