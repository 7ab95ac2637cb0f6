// XML Encryption of SOAP-with-attachments parts by the WS-Security SwA profile 1.1, as AS4 (eDelivery) encrypts its
// payloads: each part's content is replaced by its ciphertext, an xenc:EncryptedData in the wsse:Security header
// describes it (CipherReference to the cid:, the original MimeType kept), one xenc:EncryptedKey carries the content
// key and lists the EncryptedData. Two algorithm suites, named by profile: eDelivery AS4 1.x (AES-128-GCM content,
// RSA-OAEP key transport) and 2.0 (AES-128-GCM content, X25519 key agreement, HKDF-SHA256, AES-128 key wrap).
// Parts are streamed both ways, a chunk at a time. A decrypted stream is authentic only once it has ended: GCM's tag
// is checked at the end, and a tag that fails makes the stream emit SWX_DECRYPT_FAILED after the bytes it gave, so a
// consumer must hold or stage what it reads and discard all of it on that error (see PartDecryption.open). The
// ciphers themselves are xmlenc-ciphers.ts.
import { createCipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, randomUUID, constants, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { SwxError } from '../errors.ts';
import type { XmlAttachment } from './xmldsig-trust.ts';
import { bareContentId, cidUrl } from '../mime/headers.ts';
import { parseXml, XmlRefusal } from '../xml/parse.ts';
import { certificate, type ParsedCert } from './certs.ts';
import { certificateReference, childElement, namesCertificate, type CertificateReference } from './keyinfo.ts';
import { create, domTree, pemCache, securityHeader, serialize } from './xmldsig.ts';
import { fastTree } from './xmldsig-fast.ts';
import type { SignatureTree } from './xmldsig-spec.ts';
import { namespaces as dsNamespaces, parseDocument } from './xmldsig-algorithms.ts';
import { chunks, contentCiphers, derivedKek, gcmOpened, gcmSealed, hkdfKeyLength, ivLength, tagLength, unwrapWithKek, wrapWithKek, type HkdfParams } from './xmlenc-ciphers.ts';

export const namespaces = {
  ...dsNamespaces,
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  xenc11: 'http://www.w3.org/2009/xmlenc11#',
  dsigMore: 'http://www.w3.org/2021/04/xmldsig-more#',
  wsse11: 'http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd',
} as const;

const swa = 'http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1';
export const encryptionUris = {
  aes128gcm: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  aes256gcm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  rsaOaep: 'http://www.w3.org/2009/xmlenc11#rsa-oaep',
  rsaOaepMgf1p: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  mgf1sha1: 'http://www.w3.org/2009/xmlenc11#mgf1sha1',
  mgf1sha256: 'http://www.w3.org/2009/xmlenc11#mgf1sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  kwAes128: 'http://www.w3.org/2001/04/xmlenc#kw-aes128',
  x25519: 'http://www.w3.org/2021/04/xmldsig-more#x25519',
  hkdf: 'http://www.w3.org/2021/04/xmldsig-more#hkdf',
  hmacSha256: 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256',
  contentOnly: `${swa}#Attachment-Content-Only`,
  complete: `${swa}#Attachment-Complete`,
  ciphertextTransform: `${swa}#Attachment-Ciphertext-Transform`,
  encryptedKeyToken: 'http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey',
} as const;


/**
 * The algorithm suites a partner agreement (P-Mode) names, by the names connectors/as4's P-Modes give them. eDelivery AS4 1.x: AES-128-GCM, RSA-OAEP (xmlenc 1.1 with
 * MGF1-SHA-256 and SHA-256 written; rsa-oaep-mgf1p also read and, on request, written). eDelivery AS4 2.0:
 * AES-128-GCM, X25519 agreement with HKDF (HMAC-SHA-256) and AES-128 key wrap.
 */
export type EncryptionProfile = 'eDelivery-AS4-1.15' | 'eDelivery-AS4-2.0';
export const encryptionProfiles: readonly EncryptionProfile[] = ['eDelivery-AS4-1.15', 'eDelivery-AS4-2.0'];

/** The partner a message is encrypted for. */
export interface EncryptionRecipient {
  /** Its encryption certificate: an RSA key for eDelivery AS4 1.x, an X25519 key for 2.0. */
  certPem: string;
  /** How the EncryptedKey names that certificate: its SubjectKeyIdentifier (default) or issuer and serial. */
  reference?: CertificateReference;
}

export interface EncryptOptions {
  /** eDelivery AS4 1.x only: rsa-oaep (xmlenc 1.1, MGF1-SHA-256, SHA-256; default) or rsa-oaep-mgf1p (SHA-1 throughout, what xmlsec1 1.2 reads). */
  keyTransport?: 'rsa-oaep' | 'rsa-oaep-mgf1p';
}

/** A part as it is to be sent (plaintext) or as it came (ciphertext): its body a Buffer or a stream of chunks. */
export interface SwaPart {
  /** Without angle brackets. */
  contentId: string;
  /** The whole field value, parameters included. */
  contentType: string;
  body: Buffer | AsyncIterable<Uint8Array>;
  /** The length of a body given as a stream, when known. */
  size?: number;
}

/** A part after encryption or decryption: the same Content-ID, its new Content-Type, its bytes as a stream. */
export interface TransformedPart {
  contentId: string;
  contentType: string;
  body: Readable;
  /** The ciphertext's length, when the plaintext's was known: it is the IV, the plaintext's length and the tag. */
  size?: number;
}

const failed = (detail: string) => new SwxError('SWX_DECRYPT_FAILED', detail);
const unsupported = (detail: string) => new SwxError('SWX_ENC_ALG_UNSUPPORTED', detail);


// ---------------------------------------------------------------- keys

const privateKeys = pemCache<KeyObject>(16);

function privateKeyOf(pem: string): KeyObject {
  try {
    return privateKeys(pem, (text) => createPrivateKey(text));
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the decryption key is not a readable PEM private key: ${(error as Error).message}`);
  }
}

function recipientCertificate(pem: string): ParsedCert {
  try {
    return certificate(pem);
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the recipient certificate cannot be read: ${(error as Error).message}`);
  }
}

const oaepHashes: Record<string, 'sha1' | 'sha256'> = { [encryptionUris.sha1]: 'sha1', [encryptionUris.sha256]: 'sha256' };


// ---------------------------------------------------------------- writing

function element(doc: Document, namespace: string, name: string, attributes: Record<string, string> = {}, text?: string): Element {
  return create(doc, namespace, name, attributes, text);
}

function method(doc: Document, name: string, algorithm: string): Element {
  return element(doc, name.startsWith('xenc11:') ? namespaces.xenc11 : name.startsWith('ds:') ? namespaces.ds : namespaces.xenc, name, { Algorithm: algorithm });
}

/** The EncryptedKey's EncryptionMethod and KeyInfo, and the wrapped content key, for a recipient and profile. */
function keyEncryption(doc: Document, cek: Buffer, recipient: EncryptionRecipient, profile: EncryptionProfile, options: EncryptOptions): { method: Element; keyInfo: Element; wrapped: Buffer } {
  const cert = recipientCertificate(recipient.certPem);
  const keyType = cert.publicKey.asymmetricKeyType;
  const keyInfo = element(doc, namespaces.ds, 'ds:KeyInfo');
  const named = certificateReference(doc, cert, recipient.reference ?? 'ski');
  if (profile === 'eDelivery-AS4-1.15') {
    if (keyType !== 'rsa') throw new SwxError('SWX_BAD_REQUEST', `eDelivery AS4 1.x encrypts for an RSA key; ${cert.subject} holds a ${keyType} key`);
    const legacy = options.keyTransport === 'rsa-oaep-mgf1p';
    const hash = legacy ? 'sha1' : 'sha256';
    const transport = method(doc, 'xenc:EncryptionMethod', legacy ? encryptionUris.rsaOaepMgf1p : encryptionUris.rsaOaep);
    transport.appendChild(method(doc, 'ds:DigestMethod', legacy ? encryptionUris.sha1 : encryptionUris.sha256));
    if (!legacy) transport.appendChild(method(doc, 'xenc11:MGF', encryptionUris.mgf1sha256));
    keyInfo.appendChild(named);
    const wrapped = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, cek);
    return { method: transport, keyInfo, wrapped };
  }
  if (keyType !== 'x25519') throw new SwxError('SWX_BAD_REQUEST', `eDelivery AS4 2.0 encrypts for an X25519 key; ${cert.subject} holds a ${keyType} key`);
  const ephemeral = generateKeyPairSync('x25519');
  const params: HkdfParams = { salt: randomBytes(32), info: Buffer.from(encryptionUris.kwAes128, 'utf8'), keyLength: hkdfKeyLength };
  const kek = derivedKek(ephemeral.privateKey, cert.publicKey, params);
  const agreement = element(doc, namespaces.xenc, 'xenc:AgreementMethod', { Algorithm: encryptionUris.x25519 });
  const derivation = element(doc, namespaces.xenc11, 'xenc11:KeyDerivationMethod', { 'xmlns:xenc11': namespaces.xenc11, Algorithm: encryptionUris.hkdf });
  const hkdf = element(doc, namespaces.dsigMore, 'dsig-more:HKDFParams', { 'xmlns:dsig-more': namespaces.dsigMore });
  hkdf.appendChild(element(doc, namespaces.dsigMore, 'dsig-more:PRF', { Algorithm: encryptionUris.hmacSha256 }));
  hkdf.appendChild(element(doc, namespaces.dsigMore, 'dsig-more:Salt', {}, params.salt.toString('base64')));
  hkdf.appendChild(element(doc, namespaces.dsigMore, 'dsig-more:Info', {}, params.info.toString('base64')));
  hkdf.appendChild(element(doc, namespaces.dsigMore, 'dsig-more:KeyLength', {}, String(params.keyLength)));
  derivation.appendChild(hkdf);
  agreement.appendChild(derivation);
  const originator = element(doc, namespaces.xenc, 'xenc:OriginatorKeyInfo');
  const spki = ephemeral.publicKey.export({ type: 'spki', format: 'der' });
  originator.appendChild(element(doc, namespaces.dsig11, 'dsig11:DEREncodedKeyValue', { 'xmlns:dsig11': namespaces.dsig11 }, spki.toString('base64')));
  agreement.appendChild(originator);
  const recipientInfo = element(doc, namespaces.xenc, 'xenc:RecipientKeyInfo');
  recipientInfo.appendChild(named);
  agreement.appendChild(recipientInfo);
  keyInfo.appendChild(agreement);
  return { method: method(doc, 'xenc:EncryptionMethod', encryptionUris.kwAes128), keyInfo, wrapped: wrapWithKek(kek, cek) };
}

function encryptedKeyElement(doc: Document, id: string, encryption: ReturnType<typeof keyEncryption>): Element {
  const encryptedKey = element(doc, namespaces.xenc, 'xenc:EncryptedKey', { 'xmlns:xenc': namespaces.xenc, Id: id });
  encryptedKey.appendChild(encryption.method);
  encryptedKey.appendChild(encryption.keyInfo);
  const cipherData = element(doc, namespaces.xenc, 'xenc:CipherData');
  cipherData.appendChild(element(doc, namespaces.xenc, 'xenc:CipherValue', {}, encryption.wrapped.toString('base64')));
  encryptedKey.appendChild(cipherData);
  return encryptedKey;
}

function checkProfile(profile: string): asserts profile is EncryptionProfile {
  if (!encryptionProfiles.includes(profile as EncryptionProfile)) throw new SwxError('SWX_BAD_REQUEST', `encryption profile ${JSON.stringify(profile)} is not one of ${encryptionProfiles.join(', ')}`);
}

/**
 * Encrypts a SOAP-with-attachments message's parts for one recipient (WS-Security SwA 1.1, Attachment-Content-Only):
 * adds to the envelope's wsse:Security header, first, one EncryptedKey and an EncryptedData per part, and returns the
 * envelope and the parts' ciphertext streams (application/octet-stream, same Content-ID), each encrypted as it is
 * read. Sign first (signSoap over the plaintext parts), then encrypt: the signature covers no header element this adds.
 */
export async function encryptSoapAttachments(
  envelope: Buffer | string,
  parts: readonly SwaPart[],
  recipient: EncryptionRecipient,
  profile: EncryptionProfile,
  options: EncryptOptions = {},
): Promise<{ envelope: string; parts: TransformedPart[] }> {
  checkProfile(profile);
  if (parts.length === 0) throw new SwxError('SWX_BAD_REQUEST', 'no attachment to encrypt');
  if (options.keyTransport && profile !== 'eDelivery-AS4-1.15') throw new SwxError('SWX_BAD_REQUEST', 'keyTransport is chosen only under eDelivery AS4 1.x');
  let doc: Document;
  try {
    doc = parseDocument(envelope);
  } catch (error) {
    if (error instanceof XmlRefusal) throw new SwxError(error.code, error.message);
    throw error;
  }
  const security = securityHeader(doc);
  const content = contentCiphers[encryptionUris.aes128gcm]!;
  const cek = randomBytes(content.keyLength);
  const keyId = `EK-${randomUUID()}`;
  const encryptedKey = encryptedKeyElement(doc, keyId, keyEncryption(doc, cek, recipient, profile, options));
  const referenceList = element(doc, namespaces.xenc, 'xenc:ReferenceList');
  encryptedKey.appendChild(referenceList);
  // Before everything already in the header (the Signature among it): a receiver decrypts, then verifies.
  const first = security.firstChild;
  security.insertBefore(encryptedKey, first);
  const seen = new Set<string>();
  const out: TransformedPart[] = [];
  for (const part of parts) {
    if (!part.contentId || seen.has(part.contentId)) throw new SwxError('SWX_BAD_REQUEST', `attachment Content-ID ${JSON.stringify(part.contentId)} is empty or repeated`);
    seen.add(part.contentId);
    const dataId = `ED-${randomUUID()}`;
    referenceList.appendChild(element(doc, namespaces.xenc, 'xenc:DataReference', { URI: `#${dataId}` }));
    const data = element(doc, namespaces.xenc, 'xenc:EncryptedData', { 'xmlns:xenc': namespaces.xenc, Id: dataId, MimeType: part.contentType, Type: encryptionUris.contentOnly });
    data.appendChild(method(doc, 'xenc:EncryptionMethod', encryptionUris.aes128gcm));
    const keyInfo = element(doc, namespaces.ds, 'ds:KeyInfo', { 'xmlns:ds': namespaces.ds });
    const tokenReference = element(doc, namespaces.wsse, 'wsse:SecurityTokenReference', { 'xmlns:wsse11': namespaces.wsse11 });
    tokenReference.setAttributeNS(namespaces.wsse11, 'wsse11:TokenType', encryptionUris.encryptedKeyToken);
    tokenReference.appendChild(element(doc, namespaces.wsse, 'wsse:Reference', { URI: `#${keyId}` }));
    keyInfo.appendChild(tokenReference);
    data.appendChild(keyInfo);
    const cipherData = element(doc, namespaces.xenc, 'xenc:CipherData');
    const reference = element(doc, namespaces.xenc, 'xenc:CipherReference', { URI: cidUrl(part.contentId) });
    const transforms = element(doc, namespaces.xenc, 'xenc:Transforms');
    transforms.appendChild(method(doc, 'ds:Transform', encryptionUris.ciphertextTransform));
    reference.appendChild(transforms);
    cipherData.appendChild(reference);
    data.appendChild(cipherData);
    security.insertBefore(data, first);
    const size = Buffer.isBuffer(part.body) ? part.body.length : part.size;
    out.push({
      contentId: part.contentId, contentType: 'application/octet-stream', body: Readable.from(gcmSealed(chunks(part.body), content.cipher, cek), { objectMode: false }),
      ...(size === undefined ? {} : { size: ivLength + size + tagLength }),
    });
  }
  return { envelope: serialize(doc), parts: out };
}

/**
 * One payload as a self-contained xenc:EncryptedData (CipherValue, its EncryptedKey inside its KeyInfo), with the same
 * key transport and content cipher as encryptSoapAttachments: for channels without MIME parts, and for checking the
 * primitives with tools that do not resolve cid: references (xmlsec1).
 */
export function encryptToDocument(plaintext: Buffer, mimeType: string, recipient: EncryptionRecipient, profile: EncryptionProfile, options: EncryptOptions = {}): string {
  checkProfile(profile);
  const doc = parseDocument(`<xenc:EncryptedData xmlns:xenc="${namespaces.xenc}" xmlns:ds="${namespaces.ds}"/>`);
  const data = doc.documentElement;
  data.setAttribute('MimeType', mimeType);
  const content = contentCiphers[encryptionUris.aes128gcm]!;
  const cek = randomBytes(content.keyLength);
  data.appendChild(method(doc, 'xenc:EncryptionMethod', encryptionUris.aes128gcm));
  const keyInfo = element(doc, namespaces.ds, 'ds:KeyInfo');
  keyInfo.appendChild(encryptedKeyElement(doc, `EK-${randomUUID()}`, keyEncryption(doc, cek, recipient, profile, options)));
  data.appendChild(keyInfo);
  const iv = randomBytes(ivLength);
  const cipher = createCipheriv(content.cipher, cek, iv, { authTagLength: tagLength });
  const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  const cipherData = element(doc, namespaces.xenc, 'xenc:CipherData');
  cipherData.appendChild(element(doc, namespaces.xenc, 'xenc:CipherValue', {}, sealed.toString('base64')));
  data.appendChild(cipherData);
  return serialize(doc);
}

// ---------------------------------------------------------------- reading

/** What the Security header says of one encrypted part. */
export interface EncryptedPartInfo {
  contentId: string;
  /** The part's media type before encryption, from the EncryptedData's MimeType (absent when it has none). */
  mimeType?: string;
  /** The EncryptedData's content cipher URI. */
  algorithm: string;
  /** The EncryptedData's Type (Attachment-Content-Only or Attachment-Complete). */
  type: string;
}

interface ReadEncryption<E> {
  encryptedKey: E;
  data: { element: E; info: EncryptedPartInfo }[];
}

const attr = (el: Element, name: string) => (el.hasAttribute(name) ? el.getAttribute(name) ?? '' : undefined);
const base64 = (el: Element | undefined, what: string): Buffer => {
  const text = (el?.textContent ?? '').replace(/\s+/g, '');
  if (!el || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new SwxError('SWX_BAD_REQUEST', `${what} is missing or not base64`);
  return Buffer.from(text, 'base64');
};

// The header is read alike from the DOM (to decrypt, where the key's KeyInfo is judged) and from swx's own parse (to
// list the encrypted parts, which costs a fraction of a DOM).
const first = <E>(tree: SignatureTree<E>, parent: E, namespace: string, localName: string): E | undefined => tree.children(parent, namespace, localName)[0];

function securityBlock<E>(tree: SignatureTree<E>, root: E): E | undefined {
  const soap = tree.namespace(root);
  const header = soap ? first(tree, root, soap, 'Header') : undefined;
  const blocks = header ? tree.children(header, namespaces.wsse, 'Security') : [];
  if (blocks.length > 1) throw new SwxError('SWX_BAD_REQUEST', `the SOAP Header holds ${blocks.length} wsse:Security headers; one is accepted`);
  return blocks[0];
}

/** An EncryptedData of the header that names a MIME part (CipherReference to a cid:). */
function partOf<E>(tree: SignatureTree<E>, data: E): EncryptedPartInfo {
  const id = tree.attribute(data, 'Id') ?? '(no Id)';
  const cipherData = first(tree, data, namespaces.xenc, 'CipherData');
  const reference = cipherData && first(tree, cipherData, namespaces.xenc, 'CipherReference');
  const uri = reference ? tree.attribute(reference, 'URI') ?? '' : '';
  if (!uri.toLowerCase().startsWith('cid:')) throw new SwxError('SWX_BAD_REQUEST', `EncryptedData ${id} does not reference a MIME part (CipherReference URI="cid:...")`);
  let contentId: string;
  try {
    contentId = bareContentId(decodeURIComponent(uri.slice(4)));
  } catch {
    throw new SwxError('SWX_BAD_REQUEST', `EncryptedData ${id}: ${uri.slice(0, 120)} is not a valid cid: URL`);
  }
  const transforms = first(tree, reference!, namespaces.xenc, 'Transforms');
  for (const transform of transforms ? tree.children(transforms, namespaces.ds, 'Transform') : []) {
    const algorithm = tree.attribute(transform, 'Algorithm') ?? '';
    if (algorithm !== encryptionUris.ciphertextTransform) throw unsupported(`EncryptedData ${id}: CipherReference transform ${algorithm.slice(0, 200)} is not supported (only ${encryptionUris.ciphertextTransform})`);
  }
  const encryptionMethod = first(tree, data, namespaces.xenc, 'EncryptionMethod');
  const mimeType = tree.attribute(data, 'MimeType');
  return { contentId, algorithm: encryptionMethod ? tree.attribute(encryptionMethod, 'Algorithm') ?? '' : '', type: tree.attribute(data, 'Type') ?? '', ...(mimeType ? { mimeType } : {}) };
}

function readEncryption<E>(tree: SignatureTree<E>, root: E): ReadEncryption<E> | undefined {
  const security = securityBlock(tree, root);
  if (!security) return undefined;
  const keys = tree.children(security, namespaces.xenc, 'EncryptedKey').filter((key) => first(tree, key, namespaces.xenc, 'ReferenceList'));
  const allData = tree.children(security, namespaces.xenc, 'EncryptedData');
  if (keys.length === 0 && allData.length === 0) return undefined;
  if (keys.length !== 1) throw new SwxError('SWX_BAD_REQUEST', `the Security header holds ${keys.length} EncryptedKey elements with a ReferenceList; one is accepted`);
  const encryptedKey = keys[0]!;
  const data = tree.children(first(tree, encryptedKey, namespaces.xenc, 'ReferenceList')!, namespaces.xenc, 'DataReference').map((reference) => {
    const uri = tree.attribute(reference, 'URI') ?? '';
    if (!uri.startsWith('#')) throw new SwxError('SWX_BAD_REQUEST', `DataReference URI ${uri.slice(0, 120)} is not to this header`);
    const found = allData.filter((candidate) => tree.attribute(candidate, 'Id') === uri.slice(1));
    if (found.length !== 1) throw failed(`DataReference ${uri.slice(0, 120)}: ${found.length} EncryptedData elements of the Security header carry that Id; exactly one must`);
    return { element: found[0]!, info: partOf(tree, found[0]!) };
  });
  if (data.length === 0) throw new SwxError('SWX_BAD_REQUEST', 'the EncryptedKey\'s ReferenceList names no EncryptedData');
  const cids = new Set(data.map((entry) => entry.info.contentId));
  if (cids.size < data.length) throw new SwxError('SWX_BAD_REQUEST', 'two EncryptedData elements name one MIME part');
  return { encryptedKey, data };
}

/** The envelope through the XML gate; its refusals as SwxErrors with the gate's code. */
function gated<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof XmlRefusal) throw new SwxError(error.code, error.message);
    throw error;
  }
}

const parsed = (envelope: Buffer | string): Document => gated(() => parseDocument(envelope));
const readFast = (envelope: Buffer | string) => readEncryption(fastTree, gated(() => parseXml(envelope)).root);

/** The parts a SOAP envelope's Security header says are encrypted (SwA CipherReferences); empty when none. */
export function encryptedParts(envelope: Buffer | string): EncryptedPartInfo[] {
  return readFast(envelope)?.data.map((entry) => entry.info) ?? [];
}

/** The hub's key to decrypt with: its private key, and the certificate partners encrypt for (to check the EncryptedKey names it). */
export interface DecryptionKey {
  keyPem: string;
  certPem?: string;
}

function expect(profile: EncryptionProfile, what: string, expected: readonly string[], found: string): void {
  if (expected.includes(found)) return;
  throw unsupported(`${profile} expects ${what} ${expected.join(' or ')}; the message has ${found.slice(0, 200) || '(none)'}`);
}

/** The content key the EncryptedKey carries, for this key and this profile. */
function contentKey(encryptedKey: Element, key: DecryptionKey, profile: EncryptionProfile, byId: (id: string) => Element[]): Buffer {
  const privateKey = privateKeyOf(key.keyPem);
  const cert = key.certPem ? recipientCertificate(key.certPem) : undefined;
  const encryptionMethod = childElement(encryptedKey, namespaces.xenc, 'EncryptionMethod');
  const algorithm = encryptionMethod ? attr(encryptionMethod, 'Algorithm') ?? '' : '';
  const keyInfo = childElement(encryptedKey, namespaces.ds, 'KeyInfo');
  const wrapped = base64(childElement(childElement(encryptedKey, namespaces.xenc, 'CipherData') ?? encryptedKey, namespaces.xenc, 'CipherValue'), 'the EncryptedKey\'s CipherValue');
  const known = [encryptionUris.rsaOaep, encryptionUris.rsaOaepMgf1p, encryptionUris.kwAes128];
  if (!known.includes(algorithm as never)) {
    throw unsupported(`EncryptedKey algorithm ${algorithm.slice(0, 200) || '(none)'} is not supported; ${profile} expects ${profile === 'eDelivery-AS4-1.15' ? `${encryptionUris.rsaOaep} or ${encryptionUris.rsaOaepMgf1p}` : encryptionUris.kwAes128}`);
  }
  const named = (reference: Element | undefined, where: string) => {
    if (!cert || !reference) return;
    const outcome = namesCertificate(reference, byId, cert);
    if (outcome === true) return;
    if (outcome === false) throw failed(`${where} names another recipient's certificate than ${cert.subject} (serial ${cert.serial}): this message is not encrypted for this key`);
    throw failed(`${where} cannot be matched to ${cert.subject}: ${outcome.detail}`);
  };

  if (profile === 'eDelivery-AS4-1.15') {
    expect(profile, 'key transport', [encryptionUris.rsaOaep, encryptionUris.rsaOaepMgf1p], algorithm);
    const digest = childElement(encryptionMethod!, namespaces.ds, 'DigestMethod');
    const digestUri = digest ? attr(digest, 'Algorithm') ?? '' : encryptionUris.sha1;
    const mgf = childElement(encryptionMethod!, namespaces.xenc11, 'MGF');
    const mgfUri = algorithm === encryptionUris.rsaOaepMgf1p ? encryptionUris.mgf1sha1 : mgf ? attr(mgf, 'Algorithm') ?? '' : encryptionUris.mgf1sha1;
    if (algorithm === encryptionUris.rsaOaep) {
      expect(profile, 'RSA-OAEP with MGF', [encryptionUris.mgf1sha256], mgfUri);
      expect(profile, 'RSA-OAEP with DigestMethod', [encryptionUris.sha256], digestUri);
    } else {
      // node:crypto takes one hash for OAEP and its MGF1, and mgf1p's MGF1 is SHA-1.
      expect(profile, 'rsa-oaep-mgf1p with DigestMethod', [encryptionUris.sha1], digestUri);
    }
    if (childElement(encryptionMethod!, namespaces.xenc, 'OAEPparams')) throw unsupported('RSA-OAEP with OAEPparams (a label) is not supported');
    named(keyInfo && childElement(keyInfo, namespaces.wsse, 'SecurityTokenReference'), 'the EncryptedKey\'s KeyInfo');
    if (privateKey.asymmetricKeyType !== 'rsa') throw failed(`the EncryptedKey is for an RSA key and the key given is ${privateKey.asymmetricKeyType}`);
    try {
      return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHashes[digestUri]! }, wrapped);
    } catch {
      throw failed('the content key does not decrypt with this RSA key: the message is encrypted for another key, or the EncryptedKey was altered');
    }
  }

  expect(profile, 'key wrap', [encryptionUris.kwAes128], algorithm);
  const agreement = keyInfo && childElement(keyInfo, namespaces.xenc, 'AgreementMethod');
  if (!agreement) throw unsupported(`${profile} expects key agreement ${encryptionUris.x25519} in the EncryptedKey's KeyInfo; it has none`);
  expect(profile, 'key agreement', [encryptionUris.x25519], attr(agreement, 'Algorithm') ?? '');
  const derivation = childElement(agreement, namespaces.xenc11, 'KeyDerivationMethod');
  expect(profile, 'key derivation', [encryptionUris.hkdf], derivation ? attr(derivation, 'Algorithm') ?? '' : '');
  const hkdf = childElement(derivation!, namespaces.dsigMore, 'HKDFParams');
  if (!hkdf) throw new SwxError('SWX_BAD_REQUEST', 'the HKDF KeyDerivationMethod has no dsig-more:HKDFParams');
  const prf = childElement(hkdf, namespaces.dsigMore, 'PRF');
  expect(profile, 'HKDF PRF', [encryptionUris.hmacSha256], prf ? attr(prf, 'Algorithm') ?? '' : '');
  const saltElement = childElement(hkdf, namespaces.dsigMore, 'Salt');
  const infoElement = childElement(hkdf, namespaces.dsigMore, 'Info');
  const lengthText = childElement(hkdf, namespaces.dsigMore, 'KeyLength')?.textContent?.trim() ?? '';
  // In octets, as Apache Santuario writes it; AES-128 key wrap takes a 16-octet key.
  if (lengthText !== String(hkdfKeyLength)) throw unsupported(`HKDF KeyLength ${JSON.stringify(lengthText.slice(0, 20))}: kw-aes128 needs ${hkdfKeyLength} (octets)`);
  const params: HkdfParams = {
    // RFC 5869 2.2: no salt is a string of HashLen zeros, which is what hkdfSync does with an empty one.
    salt: saltElement ? base64(saltElement, 'HKDF Salt') : Buffer.alloc(0),
    info: infoElement ? base64(infoElement, 'HKDF Info') : Buffer.alloc(0),
    keyLength: hkdfKeyLength,
  };
  const originator = childElement(agreement, namespaces.xenc, 'OriginatorKeyInfo');
  if (!originator) throw new SwxError('SWX_BAD_REQUEST', 'the AgreementMethod has no OriginatorKeyInfo (the sender\'s ephemeral X25519 key)');
  const originatorKey = ephemeralKey(originator);
  const recipientInfo = childElement(agreement, namespaces.xenc, 'RecipientKeyInfo');
  const recipientReference = recipientInfo && (childElement(recipientInfo, namespaces.wsse, 'SecurityTokenReference')
    ?? childElement(childElement(recipientInfo, namespaces.ds, 'KeyValue') ?? recipientInfo, namespaces.wsse, 'SecurityTokenReference'));
  named(recipientReference, 'the AgreementMethod\'s RecipientKeyInfo');
  if (privateKey.asymmetricKeyType !== 'x25519') throw failed(`the EncryptedKey is agreed with an X25519 key and the key given is ${privateKey.asymmetricKeyType}`);
  try {
    return unwrapWithKek(derivedKek(privateKey, originatorKey, params), wrapped);
  } catch {
    throw failed('the content key does not unwrap with the key agreed with this X25519 key: the message is encrypted for another key, or the EncryptedKey was altered');
  }
}

const x25519Oid = 'urn:oid:1.3.101.110';
/** DER SubjectPublicKeyInfo of an X25519 key, less its 32 key bytes (RFC 8410). */
const x25519Spki = Buffer.from('302a300506032b656e032100', 'hex');

/** The originator's ephemeral X25519 key: dsig11:DEREncodedKeyValue (bare or in ds:KeyValue), or dsig11:ECKeyValue naming 1.3.101.110. */
function ephemeralKey(originator: Element): KeyObject {
  const keyValue = childElement(originator, namespaces.ds, 'KeyValue');
  const der = childElement(originator, namespaces.dsig11, 'DEREncodedKeyValue') ?? (keyValue && childElement(keyValue, namespaces.dsig11, 'DEREncodedKeyValue'));
  let spki: Buffer;
  if (der) spki = base64(der, 'DEREncodedKeyValue');
  else {
    const ec = keyValue && childElement(keyValue, namespaces.dsig11, 'ECKeyValue');
    if (!ec) throw new SwxError('SWX_BAD_REQUEST', 'OriginatorKeyInfo holds neither a dsig11:DEREncodedKeyValue nor a dsig11:ECKeyValue');
    const curve = childElement(ec, namespaces.dsig11, 'NamedCurve');
    const curveUri = curve ? attr(curve, 'URI') ?? '' : '';
    if (curveUri !== x25519Oid) throw unsupported(`the originator's ECKeyValue names curve ${curveUri.slice(0, 80) || '(none)'}, not X25519 (${x25519Oid})`);
    const point = base64(childElement(ec, namespaces.dsig11, 'PublicKey'), 'ECKeyValue PublicKey');
    spki = point.length === 32 ? Buffer.concat([x25519Spki, point]) : point;
  }
  let key: KeyObject;
  try {
    // The same key read from its 32 bytes as a JWK: OpenSSL 3 decodes a DER key ~20× slower, and a key arrives per message.
    const raw = spki.length === x25519Spki.length + 32 && spki.subarray(0, x25519Spki.length).equals(x25519Spki) ? spki.subarray(x25519Spki.length) : undefined;
    key = raw ? createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' }) : createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the originator's key is not a readable public key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'x25519') throw unsupported(`the originator's key is ${key.asymmetricKeyType}, not X25519`);
  return key;
}

function idLookup(doc: Document): (id: string) => Element[] {
  const all = Array.from(doc.getElementsByTagName('*')) as Element[];
  return (id) => all.filter((el) => Array.from(el.attributes).some((a) => (a.localName === 'Id' || a.localName === 'ID' || a.localName === 'id') && a.value === id));
}

export interface DecryptOptions {
  /** The agreed profile: an EncryptedKey or EncryptedData with other algorithms is refused, naming what was expected. */
  profile: EncryptionProfile;
}

/** The content key of a message, unwrapped once, for its parts as they arrive (a multipart body read as a stream). */
export interface PartDecryption {
  /** The parts the Security header says are encrypted, in its order. */
  parts: EncryptedPartInfo[];
  /**
   * A part as it arrives: its plaintext stream with the original MimeType when the header names it, else the part as
   * it is. The stream errors with SWX_DECRYPT_FAILED at its end when the tag does not match; its bytes are authentic
   * only once it has ended cleanly. A caller reading parts one by one checks at the end that every part in `parts`
   * came (a missing one is SWX_DECRYPT_FAILED, as decryptSoapAttachments makes it).
   */
  open(part: SwaPart): TransformedPart;
}

/**
 * Unwraps the content key of a SOAP envelope's encryption with the hub's key, after judging every algorithm against
 * the profile and, with `key.certPem`, checking that the EncryptedKey names that certificate; nothing of any part is
 * read. Refuses with SWX_DECRYPT_FAILED, SWX_ENC_ALG_UNSUPPORTED or SWX_BAD_REQUEST; resolves to undefined when the
 * envelope encrypts nothing.
 */
export async function openEncryption(envelope: Buffer | string, key: DecryptionKey, options: DecryptOptions): Promise<PartDecryption | undefined> {
  checkProfile(options.profile);
  const doc = parsed(envelope);
  return openRead(doc, readEncryption(domTree, doc.documentElement), key, options);
}

/** openEncryption of an envelope read already (parsing it costs more than the decryption). */
function openRead(doc: Document, encryption: ReadEncryption<Element> | undefined, key: DecryptionKey, options: DecryptOptions): PartDecryption | undefined {
  if (!encryption) return undefined;
  for (const { info } of encryption.data) {
    expect(options.profile, 'content encryption', [encryptionUris.aes128gcm], info.algorithm);
    if (info.type === encryptionUris.complete) throw unsupported(`the part <${info.contentId}> is encrypted Attachment-Complete (MIME headers inside); only ${encryptionUris.contentOnly} is supported`);
    if (info.type !== encryptionUris.contentOnly) throw unsupported(`EncryptedData Type ${info.type.slice(0, 200) || '(none)'} is not ${encryptionUris.contentOnly}`);
  }
  const cek = contentKey(encryption.encryptedKey, key, options.profile, idLookup(doc));
  const content = contentCiphers[encryptionUris.aes128gcm]!;
  if (cek.length !== content.keyLength) throw failed(`the content key is ${cek.length} bytes; AES-128-GCM takes ${content.keyLength}`);
  const encrypted = new Map(encryption.data.map(({ info }) => [info.contentId, info]));
  return {
    parts: encryption.data.map(({ info }) => info),
    open(part) {
      const info = encrypted.get(part.contentId);
      if (!info) return { contentId: part.contentId, contentType: part.contentType, body: Readable.from(chunks(part.body), { objectMode: false }) };
      const plaintext = gcmOpened(chunks(part.body), content.cipher, cek, `part <${part.contentId}>`);
      return { contentId: part.contentId, contentType: info.mimeType ?? 'application/octet-stream', body: Readable.from(plaintext, { objectMode: false }) };
    },
  };
}

/**
 * Decrypts the parts a SOAP envelope's Security header says are encrypted, all at hand: openEncryption, then each
 * encrypted part as a plaintext stream with its original MimeType; parts not named pass through untouched; a part the
 * header names and `parts` lacks is SWX_DECRYPT_FAILED, before any part is read. The bytes a stream gave are authentic
 * only once it has ended without error: a caller stages them (a temporary file, a buffer) and discards all of them on
 * error, never acting on a prefix. Resolves to undefined when nothing is encrypted.
 */
export async function decryptSoapAttachments(
  envelope: Buffer | string,
  parts: readonly SwaPart[],
  key: DecryptionKey,
  options: DecryptOptions,
): Promise<TransformedPart[] | undefined> {
  return decryptParts(envelope, parts, key, options)?.opened;
}

/** decryptSoapAttachments, with the parts the header names encrypted; the envelope is read once. */
function decryptParts(envelope: Buffer | string, parts: readonly SwaPart[], key: DecryptionKey, options: DecryptOptions): { opened: TransformedPart[]; encrypted: Set<string> } | undefined {
  checkProfile(options.profile);
  const doc = parsed(envelope);
  const encryption = readEncryption(domTree, doc.documentElement);
  const present = new Set(parts.map((part) => part.contentId));
  const missing = encryption?.data.find(({ info }) => !present.has(info.contentId))?.info;
  // Judged first only when the algorithms are known, so that a message under another profile is named as such.
  const decryption = openRead(doc, encryption, key, options);
  if (!decryption) return undefined;
  if (missing) throw failed(`an EncryptedData names the MIME part <${missing.contentId.slice(0, 120)}>, which the message does not carry`);
  return { opened: parts.map((part) => decryption.open(part)), encrypted: new Set(decryption.parts.map((part) => part.contentId)) };
}

/**
 * decryptSoapAttachments over parts held whole (a message already within its size limit, as `swx verify` and the
 * WS-Security check read them): the same parts with each encrypted one's plaintext and its Content-Type restored. Any
 * failure rejects, so no plaintext of a failed part is ever returned.
 */
export async function decryptAttachments(envelope: Buffer | string, attachments: readonly XmlAttachment[], key: DecryptionKey, options: DecryptOptions): Promise<XmlAttachment[]> {
  const inputs = attachments.map((part) => ({ contentId: part.contentId, contentType: part.headers['content-type'] ?? 'application/octet-stream', body: part.body }));
  const decrypted = decryptParts(envelope, inputs, key, options);
  if (!decrypted) return [...attachments];
  const { opened, encrypted } = decrypted;
  return Promise.all(opened.map(async (part, index) => {
    const original = attachments[index]!;
    // A part digested as it streamed was decrypted on its way in (openEncryption): its body is not here to open.
    if (!encrypted.has(original.contentId) || original.digests) return original;
    const chunks: Buffer[] = [];
    for await (const chunk of part.body) chunks.push(chunk as Buffer);
    return { contentId: original.contentId, headers: { ...original.headers, 'content-type': part.contentType }, body: Buffer.concat(chunks) };
  }));
}

/** The profile whose algorithms the envelope's EncryptedKey uses (for a reader with no agreement at hand); undefined when nothing is encrypted or the algorithm is neither profile's. */
export function encryptionProfileOf(envelope: Buffer | string): EncryptionProfile | undefined {
  const encryption = readFast(envelope);
  const encryptionMethod = encryption && first(fastTree, encryption.encryptedKey, namespaces.xenc, 'EncryptionMethod');
  const algorithm = encryptionMethod ? fastTree.attribute(encryptionMethod, 'Algorithm') : undefined;
  if (algorithm === encryptionUris.rsaOaep || algorithm === encryptionUris.rsaOaepMgf1p) return 'eDelivery-AS4-1.15';
  if (algorithm === encryptionUris.kwAes128) return 'eDelivery-AS4-2.0';
  return undefined;
}
