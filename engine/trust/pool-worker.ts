// A worker thread of the signature pool (pool.ts): runs one batch of checks per task and answers one outcome per item.
// Buffers cross threads as plain Uint8Arrays, so they are made Buffers again (views, no copies) on arrival.
import { hash } from 'node:crypto';
import { verifyCms, type CmsVerdict, type VerifyCmsOptions } from './cms.ts';
import { verifyXml, type VerifyXmlOptions, type XmlVerdict } from './xmldsig.ts';

export type DigestAlgorithm = 'sha256' | 'sha384' | 'sha512';

export type SignatureTask =
  | { kind: 'cms-verify'; items: { der: Uint8Array; options: VerifyCmsOptions }[] }
  | { kind: 'xml-verify'; items: { xml: Uint8Array | string; options: VerifyXmlOptions }[] }
  | { kind: 'digest'; algorithm: DigestAlgorithm; items: Uint8Array[] };

/** Per item: its result, or the error it raised (the rest of the batch is unaffected). */
export type Outcome = { ok: true; value: CmsVerdict | XmlVerdict | Uint8Array } | { ok: false; message: string; code?: string };

export const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

async function settle(work: () => Promise<CmsVerdict | XmlVerdict>): Promise<Outcome> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    return { ok: false, message: (error as Error)?.message ?? String(error), ...(typeof code === 'string' ? { code } : {}) };
  }
}

export default async function run(task: SignatureTask): Promise<Outcome[]> {
  switch (task.kind) {
    case 'cms-verify':
      return Promise.all(task.items.map(({ der, options }) => settle(() => verifyCms(asBuffer(der), { ...options, ...(options.data ? { data: asBuffer(options.data) } : {}), ...(options.sha256 ? { sha256: asBuffer(options.sha256) } : {}) }))));
    case 'xml-verify':
      return Promise.all(task.items.map(({ xml, options }) => settle(() => verifyXml(typeof xml === 'string' ? xml : asBuffer(xml), {
        ...options,
        ...(options.attachments ? { attachments: options.attachments.map((part) => ({ ...part, body: asBuffer(part.body), ...(part.digests ? { digests: { content: asBuffer(part.digests.content), ...(part.digests.complete ? { complete: asBuffer(part.digests.complete) } : {}) } } : {}) })) } : {}),
      }))));
    case 'digest':
      return task.items.map((item) => ({ ok: true, value: hash(task.algorithm, item, 'buffer') }));
    default:
      throw new TypeError(`unknown signature task ${JSON.stringify((task as { kind?: unknown }).kind)}`);
  }
}
