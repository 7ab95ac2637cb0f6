// The files of each agency's receipts/ folder: the hub's signed receipt of every file it took, and its signed refusal
// of every file it did not, each with a detached CMS signature by the hub's signing identity. Kept in this hub process
// for the agency's later sessions, the newest ones per agency, until the agency removes them.
import { signCms } from '../../engine/trust/index.ts';
import type { HubIdentity } from '../../engine/identity.ts';

/** Receipt files kept per agency (each a JSON file and its .p7s): older ones make room. */
const keptPerAgency = 2_000;

export interface ReceiptFile { bytes: Buffer; at: Date }

export class ReceiptFolder {
  private readonly folders = new Map<string, Map<string, ReceiptFile>>();

  constructor(private readonly signing: HubIdentity['signing']) {}

  /** Writes `name` (JSON) and `name.p7s`, its detached CMS signature by the hub. */
  async put(partner: string, name: string, content: Record<string, unknown>): Promise<void> {
    const bytes = Buffer.from(`${JSON.stringify(content, null, 2)}\n`);
    const signature = await signCms({ data: bytes, certPem: this.signing.certPem, keyPem: this.signing.keyPem, detached: true });
    const folder = this.folders.get(partner) ?? new Map<string, ReceiptFile>();
    this.folders.set(partner, folder);
    const at = new Date();
    for (const [file, fileBytes] of [[name, bytes], [`${name}.p7s`, signature]] as const) {
      folder.delete(file);
      folder.set(file, { bytes: fileBytes, at });
    }
    while (folder.size > keptPerAgency) folder.delete(folder.keys().next().value!);
  }

  list(partner: string): [string, ReceiptFile][] {
    return [...(this.folders.get(partner) ?? new Map<string, ReceiptFile>())];
  }

  get(partner: string, name: string): ReceiptFile | undefined {
    return this.folders.get(partner)?.get(name);
  }

  remove(partner: string, name: string): boolean {
    return this.folders.get(partner)?.delete(name) ?? false;
  }
}
