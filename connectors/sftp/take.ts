// A complete upload becomes a message: its detached CMS signature (NAME.p7s) is checked against the content's SHA-256
// by the trust core, as a registered certificate of the agency the SSH key logged in; then intake takes it like any
// other Submission. The agency finds the hub's signed receipt, or its signed refusal, in receipts/; every refusal is
// evidenced.
import { createHash } from 'node:crypto';
import { extname } from 'node:path';
import { SwxError } from '../../engine/errors.ts';
import { log } from '../../engine/log.ts';
import type { Payloads, StoredPayload } from '../../engine/payloads.ts';
import type { Registry } from '../../engine/registry.ts';
import type { Intake, RefusedSubmission } from '../../engine/submission.ts';
import { checkDetachedSignature, type CertificateCheck, type PayloadVerifiers } from '../../engine/trust/index.ts';
import type { ReceiptFolder } from './receipts.ts';
import type { Target } from './tree.ts';

export interface TakeContext {
  registry: Registry;
  intake: Intake;
  payloads: Payloads;
  trust: CertificateCheck;
  signatures: PayloadVerifiers;
  receipts: ReceiptFolder;
}

/** The content type a file's extension announces; anything else travels as bytes. */
const contentTypes: Record<string, string> = {
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.csv': 'text/csv',
  '.txt': 'text/plain',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
};

export const contentTypeOf = (name: string) => contentTypes[extname(name).toLowerCase()] ?? 'application/octet-stream';

/** The message id of an upload: derived from its signature, so the same signed file sent again is the same message. */
export const messageIdOf = (signature: Buffer) => `sftp:${createHash('sha256').update(signature).digest('base64url')}`;

export type Taken = { ok: true; id: string; duplicate: boolean } | { ok: false; id: string; error: SwxError };

export async function take(context: TakeContext, from: string, target: Target, name: string, body: StoredPayload, signature: Buffer | undefined, flags: readonly string[] = []): Promise<Taken> {
  const { intake, payloads } = context;
  const file = `${target.dir}/${name}`;
  const submission: RefusedSubmission = {
    protocol: 'sftp', from, service: target.service, ...(target.to ? { to: target.to } : {}), action: 'deliver',
    contentType: contentTypeOf(name), payload: Buffer.alloc(0), stored: body, ...(signature ? { id: messageIdOf(signature) } : {}),
    ...(flags.length ? { flags: [...flags] } : {}),
  };
  try {
    if (!signature) throw new SwxError('SWX_SIG_MISSING', `${file} has no detached CMS signature: upload ${name}.p7s before completing ${name}`);
    submission.signature = await checkDetachedSignature(signature, Buffer.from(body.sha256, 'hex'), from, {
      verifiers: context.signatures, keyByThumbprint: (print) => context.registry.keyByThumbprint(print), trust: context.trust,
    });
    if (body.size <= payloads.inlineLimit) {
      // Small enough to travel in the envelope: read back (checked against its SHA-256) and carried inline.
      submission.payload = await payloads.bytes({ id: submission.id!, payloadRef: body.payloadRef, sha256: body.sha256 });
      delete submission.stored;
      await payloads.discard(body);
    }
    const accepted = await intake.accept(submission as Parameters<Intake['accept']>[0]);
    await context.receipts.put(from, `${name}.receipt.json`, {
      file, id: accepted.id, conversationId: accepted.conversationId, duplicate: accepted.duplicate, from, service: target.service,
      ...(target.to ? { to: target.to } : {}), size: body.size, sha256: body.sha256, signer: submission.signature.certThumbprint, acceptedAt: new Date().toISOString(),
    });
    return { ok: true, id: accepted.id, duplicate: accepted.duplicate };
  } catch (error) {
    if (!(error instanceof SwxError)) log.error({ err: error, from, file }, 'an SFTP upload was not taken: internal error');
    const swx = error instanceof SwxError ? error : new SwxError('SWX_INTERNAL', 'the hub could not take this file; upload it again', { cause: error });
    const id = await intake.reject(submission, swx).catch(() => undefined);
    if (submission.stored) await payloads.discard(submission.stored).catch((discardError) => log.warn({ err: discardError, ref: body.payloadRef }, 'a refused upload could not be removed'));
    await context.receipts.put(from, `${name}.error.json`, {
      file, code: swx.code, detail: swx.message, ...(id ? { messageId: id } : {}), from, service: target.service,
      ...(target.to ? { to: target.to } : {}), size: body.size, sha256: body.sha256, refusedAt: new Date().toISOString(),
    });
    return { ok: false, id: id ?? '', error: swx };
  }
}
