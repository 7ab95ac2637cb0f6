// A worker thread of the signature pool (pool.ts): runs one batch of checks or signatures per task and answers one
// outcome per item.
// Buffers cross threads as plain Uint8Arrays, so they are made Buffers again (views, no copies) on arrival.
import { hash } from 'node:crypto';
import { verifyCms, type CmsVerdict, type VerifyCmsOptions } from './cms.ts';
import { signSoap, type SignSoapOptions } from './wssecurity.ts';
import { signXml, verifyXml, type SignXmlOptions, type VerifyXmlOptions, type XmlAttachment, type XmlVerdict } from './xmldsig.ts';
import type { AttachmentDigests } from './xmldsig-algorithms.ts';

export type DigestAlgorithm = 'sha256' | 'sha384' | 'sha512';

export type SignatureTask =
  | { kind: 'cms-verify'; items: { der: Uint8Array; options: VerifyCmsOptions }[] }
  | { kind: 'xml-verify'; items: { xml: Uint8Array | string; options: VerifyXmlOptions }[] }
  | { kind: 'digest'; algorithm: DigestAlgorithm; items: Uint8Array[] }
  | { kind: 'xml-sign'; items: { xml: string; options: SignXmlOptions }[] }
  | { kind: 'soap-sign'; items: { envelope: string; options: SignSoapOptions }[] };

/** Per item: its result, or the error it raised (the rest of the batch is unaffected). */
export type Outcome = { ok: true; value: CmsVerdict | XmlVerdict | Uint8Array | string } | { ok: false; message: string; code?: string };

export const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

async function settle(work: () => Promise<CmsVerdict | XmlVerdict | string>): Promise<Outcome> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    return { ok: false, message: (error as Error)?.message ?? String(error), ...(typeof code === 'string' ? { code } : {}) };
  }
}

/** Options whose MIME parts crossed as Uint8Arrays, with their bodies Buffers again. */
function withBuffers<T extends { attachments?: readonly XmlAttachment[] }>(options: T): T {
  return options.attachments ? {
    ...options,
    attachments: options.attachments.map((part) => ({
      ...part, body: asBuffer(part.body),
      ...(part.digests ? { digests: Object.fromEntries(Object.entries(part.digests).map(([name, digest]) => [name, asBuffer(digest as Uint8Array)])) as unknown as AttachmentDigests } : {}),
    })),
  } : options;
}

export default async function run(task: SignatureTask): Promise<Outcome[]> {
  switch (task.kind) {
    case 'cms-verify':
      return Promise.all(task.items.map(({ der, options }) => settle(() => verifyCms(asBuffer(der), { ...options, ...(options.data ? { data: asBuffer(options.data) } : {}), ...(options.sha256 ? { sha256: asBuffer(options.sha256) } : {}) }))));
    case 'xml-verify':
      return Promise.all(task.items.map(({ xml, options }) => settle(() => verifyXml(typeof xml === 'string' ? xml : asBuffer(xml), withBuffers(options)))));
    case 'xml-sign':
      return Promise.all(task.items.map(({ xml, options }) => settle(() => signXml(xml, withBuffers(options)))));
    case 'soap-sign':
      return Promise.all(task.items.map(({ envelope, options }) => settle(() => signSoap(envelope, withBuffers(options)))));
    case 'digest':
      return task.items.map((item) => ({ ok: true, value: hash(task.algorithm, item, 'buffer') }));
    default:
      throw new TypeError(`unknown signature task ${JSON.stringify((task as { kind?: unknown }).kind)}`);
  }
}
