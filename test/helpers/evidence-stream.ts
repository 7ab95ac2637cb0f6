// Reads a real nats-server's evidence stream as the archive would, for tests that run the hub's parts in process.
import type { EvidenceRecord } from '../../engine/evidence.ts';
import { streams, type Bus } from '../../engine/nats/jetstream.ts';

export class EvidenceStream {
  private read = 0;

  constructor(private readonly bus: Bus) {}

  /** The stream was made anew: read it from its start. */
  rewind(): void {
    this.read = 0;
  }

  /** The records published since the last call. */
  async published(): Promise<EvidenceRecord[]> {
    const { state } = await this.bus.jsm.streams.info(streams.evidence);
    const records: EvidenceRecord[] = [];
    for (let seq = Math.max(this.read + 1, state.first_seq); seq <= state.last_seq; seq++) {
      records.push(...(await this.bus.jsm.streams.getMessage(streams.evidence, { seq }))!.json<EvidenceRecord[]>());
    }
    this.read = state.last_seq;
    return records;
  }
}
