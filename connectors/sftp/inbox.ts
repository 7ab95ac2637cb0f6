// The inbox/ folder of an agency that receives by pull, over SFTP: the deliveries waiting for it (the same inbox the
// REST connector offers, engine/inbox.ts), each as NAME (the payload) and NAME.json (the envelope's facts), NAME being
// <FROM>.<message id>. A delivery listed is handed out to the agency's SFTP sessions in this hub process until it is
// acknowledged or its visibility timeout passes (then the inbox hands it out again, and a listing shows it anew). The agency acknowledges one by uploading NAME.p7s, its detached CMS signature over the
// payload it kept: that signature is its receipt, checked against the payload's SHA-256 and kept as evidence.
import type { Readable } from 'node:stream';
import type { Envelope } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import type { Inbox, InboxItem } from '../../engine/inbox.ts';
import type { Payloads } from '../../engine/payloads.ts';
import type { Registry } from '../../engine/registry.ts';
import { checkDetachedSignature, type CertificateCheck, type PayloadVerifiers } from '../../engine/trust/index.ts';

/** Deliveries one listing hands out to a session. */
const perListing = 100;

export interface InboxFolderContext {
  inbox: Inbox;
  payloads: Payloads;
  registry: Registry;
  trust: CertificateCheck;
  signatures: PayloadVerifiers;
  /** How long a delivery handed out stays the agency's before the inbox hands it out again. */
  visibilitySeconds: number;
}

export interface InboxFile { name: string; bytes?: Buffer; size: number; /** A payload's hex SHA-256. */ sha256?: string }

const nameOf = (envelope: Envelope) => `${envelope.from}.${envelope.id}`;

/** The facts of a delivery as NAME.json gives them (the REST inbox's listing fields). */
function facts(item: InboxItem): Buffer {
  const { envelope } = item;
  return Buffer.from(`${JSON.stringify({
    id: envelope.id, from: envelope.from, to: envelope.to, service: envelope.service, action: envelope.action, conversationId: envelope.conversationId,
    ...(envelope.refToMessageId ? { refTo: envelope.refToMessageId } : {}), ...(envelope.audience ? { [envelope.audience.kind]: envelope.audience.id } : {}),
    contentType: envelope.contentType, size: envelope.size, sha256: envelope.sha256, receivedAt: envelope.receivedAt, attempt: item.attempt,
  }, null, 2)}\n`);
}

/** An agency's inbox as its SFTP sessions in this process see it: what it was handed, by file name. */
export class InboxFolder {
  private readonly items = new Map<string, InboxItem>();
  private readonly handedAt = new Map<string, number>();

  constructor(private readonly context: InboxFolderContext, private readonly partnerId: string) {}

  /** Takes what is waiting (up to a listing's worth) and lists every delivery this session holds. */
  async list(): Promise<InboxFile[]> {
    // What was handed out longer ago than the visibility timeout is the inbox's to hand out again.
    const expired = Date.now() - this.context.visibilitySeconds * 1000;
    for (const [name, at] of this.handedAt) if (at < expired) this.forget(name);
    for (const item of await this.context.inbox.collect(this.partnerId, perListing, 0)) {
      this.items.set(nameOf(item.envelope), item);
      this.handedAt.set(nameOf(item.envelope), Date.now());
    }
    return [...this.items.keys()].flatMap((name) => [this.file(name)!, this.file(`${name}.json`)!]);
  }

  /** A file of the folder: a payload (its size) or its facts (their bytes). */
  file(name: string): InboxFile | undefined {
    const payload = this.items.get(name);
    if (payload) return { name, size: payload.envelope.size, sha256: payload.envelope.sha256 };
    const described = name.endsWith('.json') ? this.items.get(name.slice(0, -'.json'.length)) : undefined;
    if (!described) return undefined;
    const bytes = facts(described);
    return { name, bytes, size: bytes.length };
  }

  /** The payload from `offset`, streamed from where it is (inline or the Object Store). */
  payload(name: string, offset: number): Readable {
    const item = this.items.get(name);
    if (!item) throw new SwxError('SWX_NOT_FOUND', 'no such delivery in this session\'s inbox; list the folder again');
    return this.context.payloads.stream(item.envelope, offset > 0 ? { start: offset } : undefined);
  }

  /** Whether `name` is how this folder acknowledges a delivery it holds: NAME.p7s. */
  acknowledges(name: string): boolean {
    return name.endsWith('.p7s') && this.items.has(name.slice(0, -'.p7s'.length));
  }

  /** Acknowledges NAME with the agency's detached signature over its payload: evidenced as the delivery's receipt. */
  async acknowledge(signatureName: string, signature: Buffer, flags: readonly string[] = []): Promise<void> {
    const name = signatureName.slice(0, -'.p7s'.length);
    const item = this.items.get(name);
    if (!item) throw new SwxError('SWX_NOT_FOUND', 'no such delivery in this session\'s inbox; list the folder again');
    const checked = await checkDetachedSignature(signature, Buffer.from(item.envelope.sha256, 'hex'), this.partnerId, {
      verifiers: this.context.signatures, keyByThumbprint: (print) => this.context.registry.keyByThumbprint(print), trust: this.context.trust,
    });
    await this.context.inbox.acknowledge(this.partnerId, [{ id: item.envelope.id, token: item.token }], {
      raw: `SFTP acknowledgement${flags.length ? ` (flagged: ${flags.join(', ')})` : ''}: ${this.partnerId} uploaded inbox/${signatureName}, a detached CMS signature over message ${item.envelope.id} from ${item.envelope.from} (SHA-256 ${item.envelope.sha256})\n${signature.toString('base64')}\n`,
      signature: checked,
    });
    this.forget(name);
  }

  private forget(name: string): void {
    this.items.delete(name);
    this.handedAt.delete(name);
  }
}

/** Each agency's inbox folder, shared by its sessions. */
export class InboxFolders {
  private readonly folders = new Map<string, InboxFolder>();
  constructor(private readonly context: InboxFolderContext) {}
  of(partnerId: string): InboxFolder {
    let folder = this.folders.get(partnerId);
    if (!folder) this.folders.set(partnerId, folder = new InboxFolder(this.context, partnerId));
    return folder;
  }
}
