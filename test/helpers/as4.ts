// AS4 user messages as a partner's MSH sends them, for the AS4 tests: three payloads (an XML invoice gzipped as it
// streams, an XML note and a text sent as they are), signed by WS-Security over Messaging, Body and every part, sent
// as multipart/related; and the receiving side's first steps on such a body.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  as4Multipart, compress, gzipType, readAs4Body, readAs4Message, signAs4, signedAttachment, swxPartyIdType, userMessageEnvelope, type As4Message, type Party,
} from '../../connectors/as4/index.ts';
import type { XmlAttachment } from '../../engine/trust/index.ts';
import type { TestCredential } from './trust-fixture.ts';

export async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A hub's swx.json for the AS4 tests: its own PartyId, and any further settings. */
export function writeAs4Settings(dir: string, partyId: string, settings: Record<string, unknown> = {}): void {
  writeFileSync(join(dir, 'swx.json'), JSON.stringify({ ...settings, connectors: { as4: { partyId: { id: partyId } } } }));
}

/** The P-Mode of a remote hub's MSH, as the other hub registers it. */
export const hubPmode = (port: number, partyId: string) => ({
  url: `https://localhost:${port}/as4`,
  partyIds: [{ id: partyId, type: swxPartyIdType }],
  services: [{ service: 'customs.declaration', actions: ['deliver'] }, { service: 'trade.reply', actions: ['deliver'] }],
  // Encrypted to the other hub's registered RSA signing certificate (eDelivery AS4 1.x: RSA-OAEP, AES-128-GCM).
  security: { sign: true, encrypt: true },
});

export const party = (id: string): Party => ({ partyIds: [{ id, type: 'urn:oasis:names:tc:ebcore:partyid-type:unregistered:swx' }], role: 'http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole' });
export const invoice = Buffer.from(`<?xml version="1.0"?>\n<Invoice xmlns="urn:test:invoice"><Id>INV-1</Id><Lines>${'<Line amount="1.00">widget</Line>'.repeat(200)}</Lines></Invoice>\n`);
const note = Buffer.from('<note   xmlns="urn:test:note" b="2" a="1"><to>BOFT</to></note>');
const text = Buffer.from('line one\nline two\n');

export interface Sent { xml: string; contentType: string; body: Buffer; attachments: XmlAttachment[] }

export interface SendOptions {
  at: Date;
  /** Which parts the signature covers (default all). */
  signParts?: (contentId: string) => boolean;
  /** Sign eb:Messaging (default true). */
  signMessaging?: boolean;
}

export async function sendUserMessage(signer: TestCredential, options: SendOptions): Promise<Sent> {
  const zipped = await collect(compress(invoice));
  const parts = [
    { contentId: 'invoice@customs.example', contentType: gzipType, body: zipped },
    { contentId: 'note/1@customs.example', contentType: 'application/xml', body: note },
    { contentId: 'text@customs.example', contentType: 'text/plain; charset=utf-8', body: text },
  ];
  const written = userMessageEnvelope({
    messageId: 'msg-1@customs.example',
    timestamp: options.at,
    from: party('CUSTOMS'),
    to: party('BOFT'),
    collaboration: { agreementRef: { value: 'urn:swx:agreement:customs-boft', pmode: 'customs-boft' }, service: { value: 'customs.declaration', type: 'swx' }, action: 'deliver', conversationId: 'conv-1' },
    properties: [{ name: 'originalSender', value: 'CUSTOMS' }, { name: 'finalRecipient', value: 'BOFT' }],
    payloads: [
      { contentId: 'invoice@customs.example', mimeType: 'application/xml', compressionType: gzipType },
      { contentId: 'note/1@customs.example', mimeType: 'application/xml' },
      { contentId: 'text@customs.example', mimeType: 'text/plain', characterSet: 'utf-8' },
    ],
  });
  const attachments = parts.filter((part) => options.signParts?.(part.contentId) ?? true).map(signedAttachment);
  const signing = { keyPem: signer.keyPem, certPem: signer.certPem, attachments, createdAt: options.at };
  const xml = await signAs4(options.signMessaging === false ? { ...written, messagingId: written.bodyId } : written, signing);
  const multipart = as4Multipart(xml, parts.map((part) => ({ ...part, body: (async function* () { yield part.body; })() })));
  return { xml, contentType: multipart.contentType, body: await collect(multipart.body), attachments };
}

/** What the receiving side reads of a body: the envelope and its parts, through the streaming reader. */
export async function received(sent: { body: Buffer; contentType: string }): Promise<{ message: As4Message; attachments: XmlAttachment[] }> {
  const body = await readAs4Body((async function* () { yield sent.body; })(), sent.contentType, 16 * 1024 * 1024);
  return { message: readAs4Message(body.envelope, { attachments: body.attachments.map((a) => a.contentId) }), attachments: body.attachments };
}
