// WS-Security (X.509 token profile) for the query service: the inbound check of a signed SOAP message and the signing
// of the hub's own. The check is strict on shape (one Security header, one Signature, its key a BinarySecurityToken
// of that header, a Timestamp), on time (fresh, not from the future, not expired), on coverage (the Body and the
// Timestamp acted on are the elements signed: wrapping fails) and on replay.
import { createHash, randomUUID } from 'node:crypto';
import type { SignatureInfo } from '../../engine/envelope.ts';
import { SwxError } from '../../engine/errors.ts';
import type { ReplayGuard } from '../../engine/query.ts';
import { certificate } from '../../engine/trust/certs.ts';
import { signedElement, signedSecurityHeader, verifyXml as verifyXmlInProcess, type VerifyXmlOptions, type XmlVerdict } from '../../engine/trust/xmldsig.ts';
import { elementChildren, elementPath, textOf } from '../../engine/xml/elements.ts';
import type { XmlElement } from '../../engine/xml/parse.ts';
import { base64Encoding, dsNamespace, soapNamespaces, wsseNamespace, wsuNamespace, x509TokenType, type SoapVersion } from './contract.ts';
import { bodyElement, envelopeAround, type SoapMessage } from './soap.ts';
import { toPem } from '../../engine/trust/x509.ts';

/** verifyXml of engine/trust, or the signature pool's, which runs it on a worker thread. */
export type VerifyXml = (xml: Buffer | string, options?: VerifyXmlOptions) => Promise<XmlVerdict>;

export interface WsSecurityCheckOptions {
  verifyXml?: VerifyXml;
  /** Claims `<signer thumbprint>:<digest of what the signature signs>`; without it replays are not looked for. */
  replay?: ReplayGuard;
  /** How far in the future Created, and how far past Expires, may be (default 60 s). */
  clockSkewSeconds?: number;
  /** How old Created may be (default 300 s). */
  freshnessSeconds?: number;
  now?: () => number;
}

export interface WsSecurityResult {
  certificateDer: Buffer;
  certificatePem: string;
  /** base64url SHA-256 of the certificate DER, as the registry keys certificates. */
  thumbprint: string;
  verdict: XmlVerdict;
  signature: SignatureInfo;
  /** Paths of the SOAP header blocks the signature covers besides the Security header's Timestamp. */
  signedHeaders: string[];
  /** `<signer thumbprint>:<digest of what the signature signs>`: the same for a replay, however re-encoded. */
  replayKey: string;
}

const defaults = { clockSkewSeconds: 60, freshnessSeconds: 300 };

const children = (parent: XmlElement, namespace: string, localName: string) =>
  elementChildren(parent).filter((child) => child.namespace === namespace && child.localName === localName);

const attribute = (element: XmlElement, namespace: string, localName: string) =>
  element.attributes.find((a) => a.namespace === namespace && a.localName === localName)?.value;

/** xsd:dateTime with a time zone, as WS-Security's wsu:Created and wsu:Expires must be. */
function instant(element: XmlElement | undefined, what: string): number {
  const text = element ? textOf(element).trim() : '';
  const valid = /^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text);
  const at = valid ? Date.parse(text) : NaN;
  if (Number.isNaN(at)) throw new SwxError('SWX_BAD_REQUEST', `wsu:Timestamp needs ${what} as an xsd:dateTime with a time zone`);
  return at;
}

function one(parent: XmlElement, namespace: string, localName: string, where: string): XmlElement {
  const found = children(parent, namespace, localName);
  if (found.length === 0) throw new SwxError('SWX_SIG_MISSING', `${where} holds no ${localName}: the message must be signed by the WS-Security X.509 token profile`);
  if (found.length > 1) throw new SwxError('SWX_BAD_REQUEST', `${where} holds ${found.length} ${localName} elements; exactly one is accepted`);
  return found[0]!;
}

/** The BinarySecurityToken of `security` the signature's KeyInfo names. */
function signingToken(security: XmlElement, signature: XmlElement): Buffer {
  const keyInfo = children(signature, dsNamespace, 'KeyInfo')[0];
  const reference = keyInfo && children(keyInfo, wsseNamespace, 'SecurityTokenReference')[0];
  const uri = reference && children(reference, wsseNamespace, 'Reference')[0]?.attributes.find((a) => a.localName === 'URI' && a.namespace === '')?.value;
  if (!uri?.startsWith('#')) throw new SwxError('SWX_BAD_REQUEST', 'the Signature\'s KeyInfo must be a SecurityTokenReference to a BinarySecurityToken (Reference URI="#...")');
  const tokens = children(security, wsseNamespace, 'BinarySecurityToken').filter((token) => attribute(token, wsuNamespace, 'Id') === uri.slice(1));
  const token = tokens[0];
  if (tokens.length !== 1 || !token) throw new SwxError('SWX_BAD_REQUEST', `the Security header holds ${tokens.length} BinarySecurityToken elements with wsu:Id ${uri.slice(1, 80)}; exactly one must`);
  if (attribute(token, '', 'ValueType') !== x509TokenType) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken must be an X.509v3 certificate (ValueType ...#X509v3)');
  const encoding = attribute(token, '', 'EncodingType');
  if (encoding !== undefined && encoding !== base64Encoding) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken must be base64 (EncodingType ...#Base64Binary)');
  const text = textOf(token).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new SwxError('SWX_BAD_REQUEST', 'the BinarySecurityToken is not base64');
  return Buffer.from(text, 'base64');
}

/**
 * Requires the signature to cover `element` where it is. A signed element of that name elsewhere is a moved copy
 * (SWX_SIG_WRAPPED); none at all means it is not signed (SWX_SIG_MISSING).
 */
function requireSigned(verdict: XmlVerdict, element: XmlElement, what: string): string {
  const path = elementPath(element);
  if (signedElement(verdict, path)) return path;
  const elsewhere = verdict.signedElements.find((signed) => signed.localName === element.localName && signed.namespace === element.namespace);
  if (elsewhere) throw new SwxError('SWX_SIG_WRAPPED', `the signature covers a ${what} at ${elsewhere.path}, not the one at ${path} that would be acted on`);
  throw new SwxError('SWX_SIG_MISSING', `the signature does not cover the ${what}`);
}

/** What the signature commits to: the decoded DigestValues of its SignedInfo (a re-encoded SignatureValue keeps them). */
function signedDigest(signature: XmlElement): string {
  const hash = createHash('sha256');
  const signedInfo = children(signature, dsNamespace, 'SignedInfo')[0];
  for (const reference of signedInfo ? children(signedInfo, dsNamespace, 'Reference') : []) {
    for (const value of children(reference, dsNamespace, 'DigestValue')) hash.update(Buffer.from(textOf(value).replace(/\s+/g, ''), 'base64'));
  }
  return hash.digest('base64url');
}

/**
 * Checks the WS-Security of a SOAP message; rejects with an SwxError (SWX_SIG_MISSING, SWX_SIG_EXPIRED,
 * SWX_SIG_WRAPPED, SWX_REPLAY, the verifier's codes, SWX_BAD_REQUEST for a malformed Security header). Who the
 * signer is (registered, to which partner, trusted) is the caller's question: the result names the certificate.
 */
export async function checkWsSecurity(message: SoapMessage, options: WsSecurityCheckOptions = {}): Promise<WsSecurityResult> {
  const skew = (options.clockSkewSeconds ?? defaults.clockSkewSeconds) * 1000;
  const freshness = (options.freshnessSeconds ?? defaults.freshnessSeconds) * 1000;
  const now = (options.now ?? Date.now)();
  if (!message.header) throw new SwxError('SWX_SIG_MISSING', 'the message has no SOAP Header, so no WS-Security signature');
  const security = one(message.header, wsseNamespace, 'Security', 'the SOAP Header');
  const signature = one(security, dsNamespace, 'Signature', 'the Security header');
  const timestamp = one(security, wsuNamespace, 'Timestamp', 'the Security header');

  // Time first: it costs nothing, and a stale message is refused whatever its signature.
  const created = instant(children(timestamp, wsuNamespace, 'Created')[0], 'Created');
  const expires = instant(children(timestamp, wsuNamespace, 'Expires')[0], 'Expires');
  const createdAt = new Date(created).toISOString();
  if (created > now + skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Created ${createdAt} is in the future beyond the allowed clock skew`);
  if (created < now - freshness - skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Created ${createdAt} is older than ${freshness / 1000} s`);
  if (expires < now - skew) throw new SwxError('SWX_SIG_EXPIRED', `wsu:Expires ${new Date(expires).toISOString()} has passed`);

  const certificateDer = signingToken(security, signature);
  let print: string;
  try {
    // Parsed once per certificate (engine/trust/certs.ts): a peer signs every message with the same one.
    print = certificate(certificateDer).thumbprint;
  } catch (error) {
    throw new SwxError('SWX_BAD_REQUEST', `the BinarySecurityToken is not an X.509 certificate: ${(error as Error).message}`);
  }
  const certificatePem = toPem(certificateDer, 'CERTIFICATE');
  // Pinned to the token the KeyInfo names, so the verdict's signer is that certificate and no other.
  const verdict = await (options.verifyXml ?? verifyXmlInProcess)(message.raw, { pinnedCertsPem: certificatePem });
  if (!verdict.valid) throw new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, `WS-Security signature: ${verdict.detail}`);
  if (verdict.signer?.thumbprint !== print) throw new SwxError('SWX_SIG_INVALID', 'the signature was not checked with the BinarySecurityToken its KeyInfo names');
  const covered = [requireSigned(verdict, message.body, 'soap:Body'), requireSigned(verdict, timestamp, 'wsu:Timestamp')];
  const signedHeaders = elementChildren(message.header).filter((block) => block !== security).map(elementPath)
    .filter((path) => signedElement(verdict, path));

  const replayKey = `${print}:${signedDigest(signature)}`;
  if (options.replay && !options.replay.claim(replayKey)) {
    throw new SwxError('SWX_REPLAY', `this signed message (signer ${print}, created ${createdAt}) was received before`);
  }
  const value = textOf(children(signature, dsNamespace, 'SignatureValue')[0] ?? signature).replace(/\s+/g, '');
  return {
    certificateDer,
    certificatePem,
    thumbprint: print,
    verdict,
    signedHeaders,
    replayKey,
    signature: {
      scheme: 'xmldsig',
      algorithm: verdict.algorithms?.signature ?? '',
      keyId: print,
      certThumbprint: print,
      covered: [...covered, ...signedHeaders],
      value,
      createdAt,
      certificate: certificatePem,
    },
  };
}

export interface SoapSigner {
  keyPem: string;
  certPem: string;
}

/** A header block the signature covers, by its wsu:Id; `xml` must be in exclusive-c14n form (contextXml writes it so). */
export interface SignedHeader {
  xml: string;
  id: string;
}

/**
 * An envelope the hub (or a reference provider) writes and signs itself, as signSoap would sign it, without parsing:
 * the Body and the header blocks are digested as written. `bodyXml` and the blocks must therefore be in exclusive-c14n
 * form as subtrees of their own (namespaces declared where used, attributes in c14n order, no empty-element tags, text
 * and attributes escaped as c14n does): messages.ts and soap.ts write theirs so (test/connectors/ws-fastsign.test.ts
 * holds them to signSoap, xmlsec1 and zeep).
 */
export function writeSignedEnvelope(version: SoapVersion, bodyXml: string, signer: SoapSigner, headers: readonly SignedHeader[] = [], timestampTtlSeconds = 300): string {
  const bodyId = `id-${randomUUID()}`;
  const body = bodyElement(version, bodyXml, bodyId);
  const security = signedSecurityHeader([{ id: bodyId, canonical: body }, ...headers.map((block) => ({ id: block.id, canonical: block.xml }))], {
    keyPem: signer.keyPem,
    certPem: signer.certPem,
    soapNamespace: soapNamespaces[version],
    timestampTtlSeconds,
  });
  return envelopeAround(version, body, `${headers.map((block) => block.xml).join('')}${security}`);
}
