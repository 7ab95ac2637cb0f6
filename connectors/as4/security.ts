// The WS-Security check of a received AS4 message, as the profile asks it: the algorithms its P-Mode's profile fixes
// (EBMS:0103 otherwise), every payload part encrypted where the P-Mode says (EBMS:0103) and decrypted with the hub's
// key (EBMS:0102 when it does not), the signature by the WS-Security X.509 token profile over the plaintext
// (engine/trust), and coverage — eb:Messaging and every payload part the PartInfo names must be signed (EBMS:0101
// otherwise, as a failed authentication).
import { elementPath } from '../../engine/xml/elements.ts';
import { checkWsSecurity, encryptedParts, verifyXml as verifyInProcess, type WsSecurityCheckOptions, type WsSecurityResult, type XmlAttachment } from '../../engine/trust/index.ts';
import { EbmsError, ebmsErrorOf } from './errors.ts';
import type { As4Message } from './model.ts';
import { algorithmsOf, checkProfile, type As4Endpoint, type ProfileName } from './pmode.ts';

export interface As4SecurityOptions extends WsSecurityCheckOptions {
  profile: ProfileName;
  /** The MIME parts beside the envelope, as received: the signature's cid: references are resolved against them. */
  attachments: readonly XmlAttachment[];
  /** The P-Mode asks for encrypted payloads: a payload part that came in the clear is refused. */
  encrypted?: boolean;
  /** The P-Mode's RSA key transport under eDelivery AS4 1.x (default the profile's rsa-oaep). */
  keyTransport?: As4Endpoint['security']['keyTransport'];
}

/**
 * Checks a received AS4 message's signature; rejects with an EbmsError that names the message in error. Who the
 * signer is (registered to the partner of the P-Mode, trusted, not revoked) is the caller's question, on the result's
 * certificate, as for every WS-Security message (its refusals map through ebmsErrorOf).
 */
export async function checkAs4Security(message: As4Message, options: As4SecurityOptions): Promise<WsSecurityResult> {
  const messageId = message.message.messageInfo.messageId;
  const policy = checkProfile(algorithmsOf(message), options.profile, messageId, options.keyTransport);
  if (policy) throw policy;
  const verify = options.verifyXml ?? verifyInProcess;
  let result: WsSecurityResult;
  try {
    if (options.encrypted && message.message.kind === 'user') {
      const encrypted = new Set(encryptedParts(message.envelope.raw).map((part) => part.contentId));
      const clear = message.message.parts.find((part) => part.location.kind === 'attachment' && !encrypted.has(part.location.contentId));
      if (clear?.location.kind === 'attachment') {
        throw new EbmsError('EBMS:0103', `the P-Mode requires encrypted payloads; the payload <${clear.location.contentId.slice(0, 120)}> is not encrypted`, { refToMessageInError: messageId, origin: 'security' });
      }
    }
    // The attachments the check hands the verifier are the decrypted ones where they came encrypted.
    result = await checkWsSecurity(message.envelope, { ...options, verifyXml: (xml, verifyOptions) => verify(xml, { ...verifyOptions, attachments: verifyOptions?.attachments ?? options.attachments }) });
  } catch (error) {
    throw ebmsErrorOf(error, messageId);
  }
  const failed = (detail: string) => new EbmsError('EBMS:0101', detail, { refToMessageInError: messageId, origin: 'security', swxCode: 'SWX_SIG_MISSING' });
  if (!result.signedHeaders.includes(elementPath(message.messaging))) throw failed('the signature does not cover eb:Messaging');
  if (message.message.kind === 'user') {
    for (const part of message.message.parts) {
      if (part.location.kind === 'attachment' && !result.verdict.signedAttachments.includes(part.location.contentId)) {
        throw failed(`the signature does not cover the payload <${part.location.contentId.slice(0, 120)}>`);
      }
    }
  }
  return result;
}
