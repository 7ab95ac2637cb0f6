// AS4 one-way pull: a partner whose P-Mode says pull (and that receives by pull) sends a signed PullRequest for its MPC
// and gets the next delivery waiting in its inbox (engine/inbox.ts) as a signed UserMessage, or EBMS:0006 (a warning,
// HTTP 200) when none waits; its signed Receipt for that message, checked against what the hub signed, acknowledges it.
// What was handed out is kept in a KV bucket for the inbox's visibility time, so any hub process takes the Receipt.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { deliveryMessageId } from '../../engine/envelope.ts';
import { whole } from '../../engine/http.ts';
import type { HubIdentity } from '../../engine/identity.ts';
import type { Inbox } from '../../engine/inbox.ts';
import type { Payloads } from '../../engine/payloads.ts';
import { admit } from '../../engine/peer.ts';
import type { Registry } from '../../engine/registry.ts';
import type { RefusedSubmission } from '../../engine/submission.ts';
import { type CertificateCheck, type PayloadVerifiers, type WsSecurityResult, type XmlSigners } from '../../engine/trust/index.ts';
import { composeStreamedUserMessage, composeUserMessage, type StreamedMessage } from './compose.ts';
import { EbmsError, ebmsErrorOf } from './errors.ts';
import type { As4Message, ReferenceCopy, SignalMessage } from './model.ts';
import { as4Partners, type As4Partner } from './parties.ts';
import { algorithmsOf, profiles } from './pmode.ts';
import { checkReceipt } from './reception.ts';
import { checkAs4Security } from './security.ts';
import type { As4Settings } from './settings.ts';
import { errorEnvelope, signAs4, soapContentType } from './write.ts';

export const pulledBucket = 'swx_as4_pulled';

export interface As4PullOptions {
  settings: As4Settings;
  registry: Registry;
  trust: CertificateCheck;
  signatures: PayloadVerifiers & XmlSigners;
  signing: HubIdentity['signing'];
  inbox: Inbox;
  payloads: Payloads;
  pulled: KV;
  maxPayloadBytes: number;
  clockSkewSeconds: number;
}

/** An answer to a signal: a body and its type (none for an accepted Receipt); a pulled large message streams instead. */
export interface SignalAnswer { status: number; contentType?: string; body: Buffer; streamed?: Pick<StreamedMessage, 'length' | 'open'> }

/**
 * What was handed out under a MessageId: the inbox token, the signature's references, and the envelope's id (absent
 * where an earlier version handed it out, when the MessageId was always the envelope's id).
 */
interface Handed { token: string; references: ReferenceCopy[]; id?: string }

const pulledKey = (partner: string, messageId: string) => createHash('sha256').update(`${partner}\u0000${messageId}`).digest('base64url');

/**
 * The partner that signed a signal, among `candidates`: its signature judged under the profile of the candidates that
 * use its algorithm (fresh within `freshnessSeconds`, default the WS-Security check's), the certificate registered to
 * one of them and trusted. EBMS:0101 otherwise.
 */
export async function signerOf(message: As4Message, candidates: As4Partner[], options: Pick<As4PullOptions, 'registry' | 'trust' | 'signatures' | 'clockSkewSeconds'>, freshnessSeconds?: number): Promise<{ sender: As4Partner; security: WsSecurityResult; certificatePem: string }> {
  const messageId = message.message.messageInfo.messageId;
  const used = algorithmsOf(message).signature;
  const profile = candidates.find((c) => profiles[c.pmode.profile].signature === used)?.pmode.profile ?? candidates[0]!.pmode.profile;
  const security = await checkAs4Security(message, {
    profile, attachments: [], verifyXml: options.signatures.verifyXml, clockSkewSeconds: options.clockSkewSeconds, ...(freshnessSeconds ? { freshnessSeconds } : {}),
  });
  const signer = options.registry.keyByThumbprint(security.thumbprint);
  const sender = candidates.find((c) => c.partner.id === signer?.partner.id);
  if (!signer || !sender) {
    throw new EbmsError('EBMS:0101', `the signing certificate ${security.thumbprint} is not registered to a partner that may send this signal here`, { refToMessageInError: messageId, origin: 'security', swxCode: 'SWX_SIG_KEY_MISMATCH' });
  }
  await admit(options.trust, signer, 'agency-signing', 'the signing certificate').catch((error: unknown) => { throw ebmsErrorOf(error, messageId); });
  return { sender, security, certificatePem: signer.certificate.toString() };
}

/** The partners that may pull here, and so send Receipts for what they pulled. */
export const pullPartners = (registry: Registry) => as4Partners(registry).filter(({ partner, pmode }) => pmode.mep.binding === 'pull' && partner.receive === 'pull');

/** Answers a PullRequest; `partial` learns the sender once it is authenticated. Receipts are answers.ts's. */
export async function answerSignal(message: As4Message, signal: SignalMessage, partial: RefusedSubmission, options: As4PullOptions): Promise<SignalAnswer> {
  const messageId = signal.messageInfo.messageId;
  if (!signal.pullRequest) throw new EbmsError('EBMS:0008', 'this hub takes UserMessages, PullRequests, and Receipts and Error signals for what it sent; not this signal', { refToMessageInError: messageId, faultCode: 'Sender' });
  const mpc = signal.pullRequest.mpc;
  const candidates = pullPartners(options.registry).filter(({ pmode }) => pmode.mep.binding === 'pull' && pmode.mep.mpc === mpc);
  if (candidates.length === 0) throw new EbmsError('EBMS:0010', `no P-Mode of this hub lets a partner pull from MPC ${mpc.slice(0, 300)}`, { refToMessageInError: messageId, swxCode: 'SWX_AUTH_UNKNOWN_CERT' });
  const { sender } = await signerOf(message, candidates, options);
  partial.from = sender.partner.id;
  return pull(sender, messageId, options);
}

/** A pulled message's Receipt from the partner that pulled it (authenticated): checked against what the hub signed, it acknowledges the delivery. */
export async function acknowledgePulled(message: As4Message, signal: SignalMessage, sender: As4Partner, security: WsSecurityResult, options: As4PullOptions): Promise<SignalAnswer> {
  const messageId = signal.messageInfo.messageId;
  const ref = signal.messageInfo.refToMessageId;
  const entry = ref === undefined ? undefined : await options.pulled.get(pulledKey(sender.partner.id, ref));
  if (!ref || !entry || entry.operation !== 'PUT' || entry.length === 0) {
    throw new EbmsError('EBMS:0302', `the Receipt answers ${ref?.slice(0, 200) ?? 'no message'}, which was not handed to ${sender.partner.id} (or its visibility time has passed)`, { refToMessageInError: messageId, faultCode: 'Sender' });
  }
  const handed = entry.json<Handed>();
  const invalid = checkReceipt(signal, { messageId: ref, references: handed.references }, sender.pmode.receipt.signed);
  if (invalid) throw new EbmsError('EBMS:0302', invalid.detail, { refToMessageInError: messageId, faultCode: 'Sender' });
  await options.inbox.acknowledge(sender.partner.id, [{ id: handed.id ?? ref, token: handed.token }], { raw: message.envelope.raw.toString(), signature: security.signature });
  await options.pulled.delete(pulledKey(sender.partner.id, ref));
  return { status: 200, body: Buffer.alloc(0) };
}

/** The next delivery waiting for `sender` as a signed UserMessage, or the signed EBMS:0006 warning when none waits. */
async function pull(sender: As4Partner, pullRequestId: string, options: As4PullOptions): Promise<SignalAnswer> {
  const [item] = await options.inbox.collect(sender.partner.id, 1, 0);
  if (!item) {
    const empty = new EbmsError('EBMS:0006', `nothing waits for ${sender.partner.id} on MPC ${sender.pmode.mep.binding === 'pull' ? sender.pmode.mep.mpc.slice(0, 300) : ''}`, { refToMessageInError: pullRequestId });
    return signed(errorEnvelope([empty]), options);
  }
  const { envelope } = item;
  const payload = options.payloads.outgoing(envelope);
  // As a push sends it (outbound.ts): a payload over the limit streams from the Object Store, a package part by part.
  const streams = !payload.held && payload.size > options.maxPayloadBytes;
  let composed: { contentType: string; references: ReferenceCopy[] };
  let answer: SignalAnswer;
  try {
    if (streams) {
      const message = await composeStreamedUserMessage(envelope, payload, sender.pmode, options.settings, options.signing, sender.partner.certificates, options.signatures.signSoap);
      composed = message;
      answer = { status: 200, contentType: message.contentType, body: Buffer.alloc(0), streamed: message };
    } else {
      const message = await composeUserMessage(envelope, payload.held ?? await whole(payload.open()), sender.pmode, options.settings, options.signing, sender.partner.certificates, options.signatures.signSoap);
      composed = message;
      answer = { status: 200, contentType: message.contentType, body: message.body };
    }
  } catch (error) {
    throw ebmsErrorOf(error, pullRequestId);
  }
  await options.pulled.put(pulledKey(sender.partner.id, deliveryMessageId(envelope)), JSON.stringify({ token: item.token, references: composed.references, id: envelope.id } satisfies Handed));
  return answer;
}

async function signed(signal: ReturnType<typeof errorEnvelope>, options: As4PullOptions): Promise<SignalAnswer> {
  const xml = await signAs4(signal, { keyPem: options.signing.keyPem, certPem: options.signing.certPem }, options.signatures.signSoap);
  return { status: signal.httpStatus, contentType: soapContentType, body: Buffer.from(xml, 'utf8') };
}
