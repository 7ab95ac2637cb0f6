// timestamp: RFC 3161 time-stamps over the archived evidence, one token per interval whatever the traffic.
// Each archive write is a block (a Merkle tree over its records' hashes; the records keep their inclusion proofs).
// Every interval the blocks written since the last stamp become the leaves of a second tree, whose root is sent to
// the time-stamp authority; each block's row in evidence_batches keeps the token and the block root's proof.
// A TSA outage does not stop traffic at once: blocks wait (rows are already queryable), the backlog is reported,
// a warning fires at 70 % of the allowed backlog, and only past the grace period or a full backlog does the hub
// refuse new messages (SWX_TSA_UNAVAILABLE), loudly, so nothing is accepted that cannot be time-stamped in time.
import { hash, randomBytes } from 'node:crypto';
import { SwxError } from '../engine/errors.ts';
import type { StampHealth } from '../engine/evidence.ts';
import { log } from '../engine/log.ts';
import { tsaFailures, unstampedAge, unstampedRecords } from '../engine/metrics.ts';
import type { Store } from '../engine/store/index.ts';
import { createTimeStampToken, merkleTree, requestTimeStamp, timeStampTokenOf, verifyTimeStampToken, type TsaCredential } from '../engine/trust/index.ts';

/** The built-in TSA's policy: an X.667 UUID OID, so it needs no registration and names only swx. */
export const swxTsaPolicy = '2.25.306173280733763100431957801722990301386';

export interface TimeStamper {
  /** Who stamps, as evidence_batches.tsa records it: 'built-in' or the TSA's URL. */
  readonly name: string;
  /** A granted DER TimeStampResp over a SHA-256 imprint. */
  stamp(digest: Buffer): Promise<Buffer>;
}

export function builtInTsa(credential: TsaCredential): TimeStamper {
  return {
    name: 'built-in',
    // 128 random bits: unique per token without coordination between hub processes sharing the TSA key.
    stamp: async (digest) => createTimeStampToken({ digest, hashAlgorithm: 'SHA-256', policy: swxTsaPolicy, tsa: credential, serial: randomBytes(16) }),
  };
}

export function externalTsa(url: string, trustedCertsPem: string | undefined, timeoutMs: number): TimeStamper {
  return {
    name: url,
    stamp: async (digest) => (await requestTimeStamp(url, digest, { timeoutMs, ...(trustedCertsPem ? { trustedCertsPem } : {}) })).response,
  };
}

/** One archive write: its records are chain positions firstChain..lastChain of `node`. */
export interface Block {
  blockId: string;
  node: string;
  firstChain: number;
  lastChain: number;
  records: number;
  root: Buffer;
  writtenAt: Date;
}

export interface StampOptions {
  intervalMs: number;
  /** Records that may wait for a time-stamp before new messages are refused; a warning fires at 70 %. */
  maxUnstampedRecords: number;
  /** How long evidence may stay unstamped (TSA outage) before new messages are refused. */
  graceSeconds: number;
}

const clickhouseTime = (date: Date) => date.toISOString().replace('T', ' ').replace('Z', '');
const sha256 = (bytes: Buffer) => hash('sha256', bytes, 'buffer');

export class Stamper {
  private pending: Block[] = [];
  /** Records in `pending`, kept as a count: intake asks for refusal() on every message. */
  private pendingRecords = 0;
  private running: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private failingSince?: Date;
  private lastError?: string;
  private warned = false;

  constructor(private readonly store: Store, private readonly tsa: TimeStamper, private options: StampOptions) {}

  /** Blocks a previous run wrote but could not stamp (crash, TSA outage) are stamped now, late but honestly dated. */
  async recover(node: string): Promise<void> {
    const [stamped] = await this.store.query<{ last: number }>(
      'SELECT max(last_chain) AS last, count() AS n FROM evidence_batches WHERE node = {node:String} HAVING n > 0', { node });
    const rows = await this.store.query<{ batch_id: string; first_chain: number; last_chain: number; written_at: string; hashes: string[] }>(
      `SELECT batch_id, min(chain) AS first_chain, max(chain) AS last_chain, toString(max(at)) AS written_at,
              arrayMap(x -> x.2, arraySort(groupArray((chain, record_hash)))) AS hashes
       FROM evidence FINAL
       WHERE node = {node:String} AND batch_id != '' ${stamped ? 'AND chain > {after:UInt64}' : ''}
         AND batch_id NOT IN (SELECT block_id FROM evidence_batches WHERE node = {node:String})
       GROUP BY batch_id ORDER BY first_chain`,
      { node, after: stamped?.last ?? 0 });
    for (const row of rows) {
      this.add({
        blockId: row.batch_id, node, firstChain: Number(row.first_chain), lastChain: Number(row.last_chain), records: row.hashes.length,
        root: merkleTree(row.hashes).root, writtenAt: new Date(`${row.written_at.replace(' ', 'T')}Z`),
      });
    }
    if (rows.length > 0) log.warn({ blocks: rows.length, records: this.pendingRecords }, 'evidence blocks left unstamped by an earlier run; stamping them now');
  }
  /** Changes the refusal thresholds while running (a runtime setting); the interval stays as started. */
  tune(limits: Partial<Pick<StampOptions, 'graceSeconds' | 'maxUnstampedRecords'>>): void {
    this.options = { ...this.options, ...limits };
  }


  add(block: Block): void {
    this.pending.push(block);
    this.pendingRecords += block.records;
    this.report();
  }

  start(): void {
    this.timer = setInterval(() => { void this.stampPending(); }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the interval and makes one last attempt, so a clean stop leaves nothing unstamped when the TSA answers. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.stampPending();
  }

  /** Runs one stamp now (serialised with the interval's). */
  stampPending(): Promise<void> {
    this.running = this.running.then(() => this.stampOnce());
    return this.running;
  }

  health(): StampHealth {
    const oldest = this.pending[0]?.writtenAt;
    return {
      unstampedRecords: this.pendingRecords,
      oldestUnstampedSeconds: oldest ? Math.max(0, Math.round((Date.now() - oldest.getTime()) / 1000)) : 0,
      ...(this.failingSince ? { failingSince: this.failingSince.toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      tsa: this.tsa.name,
    };
  }

  /** Why new messages must be refused now, if they must: the grace period or the backlog is used up. */
  refusal(): SwxError | undefined {
    const { unstampedRecords: records, oldestUnstampedSeconds: age } = this.health();
    const cause = this.lastError ? ` (last failure: ${this.lastError})` : '';
    if (age > this.options.graceSeconds) {
      return new SwxError('SWX_TSA_UNAVAILABLE', `evidence has waited ${age}s for a time-stamp, beyond the ${this.options.graceSeconds}s grace period${cause}; fix the TSA (${this.tsa.name}) and the hub accepts messages again`);
    }
    if (records >= this.options.maxUnstampedRecords) {
      return new SwxError('SWX_TSA_UNAVAILABLE', `${records} evidence records wait for a time-stamp, the most allowed is ${this.options.maxUnstampedRecords}${cause}`);
    }
    return undefined;
  }

  private report(): void {
    const { unstampedRecords: records, oldestUnstampedSeconds: age } = this.health();
    unstampedRecords.set(records);
    unstampedAge.set(age);
    const share = records / this.options.maxUnstampedRecords;
    if (share >= 0.7 && !this.warned) {
      this.warned = true;
      log.warn({ records, max: this.options.maxUnstampedRecords, tsa: this.tsa.name, lastError: this.lastError }, 'evidence time-stamp backlog above 70 %: new messages are refused when it is full');
    } else if (share < 0.5) {
      this.warned = false;
    }
  }

  private async stampOnce(): Promise<void> {
    const blocks = this.pending.slice();
    if (blocks.length === 0) { this.report(); return; }
    try {
      const tree = merkleTree(blocks.map((block) => block.root.toString('hex')));
      const proofs = tree.encodedProofs();
      const response = await this.tsa.stamp(sha256(tree.root));
      const verdict = verifyTimeStampToken(timeStampTokenOf(response), { digest: sha256(tree.root) });
      if (!verdict.genTime) throw new SwxError('SWX_TSP_MALFORMED', `the token has no time: ${verdict.detail}`);
      const stampId = `${blocks[0]!.blockId}+${blocks.length}`;
      const common = {
        stamp_id: stampId, stamp_root: tree.root.toString('hex'), tsr: response.toString('base64'),
        gen_time: clickhouseTime(verdict.genTime), tsa: this.tsa.name,
      };
      await this.store.insert('evidence_batches', blocks.map((block, index) => JSON.stringify({
        block_id: block.blockId, node: block.node, first_chain: block.firstChain, last_chain: block.lastChain, records: block.records,
        root: block.root.toString('hex'), written_at: clickhouseTime(block.writtenAt), stamp_proof: proofs[index], ...common,
      })));
      const records = blocks.reduce((sum, block) => sum + block.records, 0);
      this.pending.splice(0, blocks.length);
      this.pendingRecords -= records;
      if (this.failingSince) log.info({ tsa: this.tsa.name, since: this.failingSince.toISOString(), records }, 'time-stamp authority answers again; backlog stamped');
      this.failingSince = undefined;
      this.lastError = undefined;
    } catch (error) {
      tsaFailures.inc();
      this.failingSince ??= new Date();
      this.lastError = (error as Error).message;
      log.error({ err: error, tsa: this.tsa.name, blocks: blocks.length, failingSince: this.failingSince.toISOString() }, 'evidence not time-stamped; retrying next interval');
    }
    this.report();
  }
}
