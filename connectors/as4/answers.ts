// Receipts and Error signals that partners' MSHs POST on their own to the hub's AS4 path: for a message a partner
// pulled (pull.ts), or for one the hub pushed under a P-Mode whose receipts come on their own (`receipt.reply:
// "async"`, awaited.ts). The signer is authenticated among the partners that may send such a signal, as every message
// is; a Receipt must then answer a message the hub sent that partner and copy what the hub signed (checkReceipt, as
// for a receipt on the connection) before it settles the delivery. A signal that answers nothing awaited, or does not
// hold, is refused with its Error signal and evidenced as the partner's.
import { messageIdPattern } from '../../engine/envelope.ts';
import type { RefusedSubmission } from '../../engine/submission.ts';
import type { AwaitedReceipts } from './awaited.ts';
import { EbmsError } from './errors.ts';
import type { As4Message, SignalMessage } from './model.ts';
import { as4Partners } from './parties.ts';
import { acknowledgePulled, signerOf, type As4PullOptions, type SignalAnswer } from './pull.ts';
import { checkReceipt, errorsEnd } from './reception.ts';

export interface As4AnswerOptions {
  pull: As4PullOptions;
  awaited: AwaitedReceipts;
}

/** How old an answer's signature may be: a repeated receipt comes when the hub resends, within its P-Mode's retries. */
const freshnessOf = (retrySeconds: readonly number[], clockSkewSeconds: number) => Math.max(300, retrySeconds.reduce((sum, wait) => sum + wait, 0)) + clockSkewSeconds;

/** Takes a Receipt or Error signal POSTed on its own; `partial` learns the sender and the signal once it is authenticated. */
export async function takeAnswer(message: As4Message, signal: SignalMessage, partial: RefusedSubmission, options: As4AnswerOptions): Promise<SignalAnswer> {
  const messageId = signal.messageInfo.messageId;
  const ref = signal.messageInfo.refToMessageId;
  const candidates = as4Partners(options.pull.registry).filter(({ partner, pmode }) => (pmode.mep.binding === 'pull'
    ? partner.receive === 'pull' && signal.receipt !== undefined
    : pmode.receipt.reply === 'async'));
  if (candidates.length === 0) {
    throw new EbmsError('EBMS:0008', 'this hub takes Receipts and Error signals on their own only for messages partners pulled or that it sent under a P-Mode with asynchronous receipts; no partner has either', { refToMessageInError: messageId, faultCode: 'Sender' });
  }
  const longest = Math.max(...candidates.map(({ pmode }) => freshnessOf(pmode.receptionAwareness.retrySeconds, options.pull.clockSkewSeconds)));
  const { sender, security, certificatePem } = await signerOf(message, candidates, options.pull, longest);
  Object.assign(partial, {
    from: sender.partner.id,
    ...(messageIdPattern.test(messageId) ? { id: messageId } : {}),
    ...(ref && messageIdPattern.test(ref) ? { refToMessageId: ref } : {}),
    signature: { ...security.signature, base: message.envelope.raw.toString('utf8') },
  });
  if (sender.pmode.mep.binding === 'pull') return acknowledgePulled(message, signal, sender, security, options.pull);

  const partner = sender.partner.id;
  const awaited = ref === undefined ? undefined : await options.awaited.get(partner, ref);
  const what = signal.receipt ? 'Receipt' : 'Error signal';
  if (!ref || !awaited) {
    const detail = `the ${what} answers ${ref?.slice(0, 200) ?? 'no message'}, which this hub did not send to ${partner}, or awaits no answer for any more`;
    throw signal.receipt
      ? new EbmsError('EBMS:0302', detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_RECEIPT_INVALID' })
      : new EbmsError('EBMS:0004', detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_BAD_REQUEST' });
  }
  if (signal.receipt) {
    const invalid = checkReceipt(signal, { messageId: ref, references: awaited.references }, sender.pmode.receipt.signed);
    if (invalid) throw new EbmsError('EBMS:0302', invalid.detail, { refToMessageInError: messageId, faultCode: 'Sender', swxCode: 'SWX_RECEIPT_INVALID' });
    await options.awaited.settle(partner, ref, { kind: 'receipt', raw: message.envelope.raw.toString('utf8'), signature: { ...security.signature, certificate: certificatePem } });
  } else if (errorsEnd(signal.errors)) {
    const detail = signal.errors.map((e) => `${e.errorCode} ${e.shortDescription ?? ''}: ${e.detail ?? e.description?.text ?? ''}`).join('; ').slice(0, 1000);
    await options.awaited.settle(partner, ref, { kind: 'error', detail });
  }
  // Warnings alone end nothing: the receipt may still come.
  return { status: 200, body: Buffer.alloc(0) };
}
