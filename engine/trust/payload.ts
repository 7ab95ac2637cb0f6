// The verify stage for signed payloads: a message whose body is itself signed (CMS SignedData for files and other
// bytes, an enveloped XMLDSig for XML documents) has that signature checked too, on the signature pool's threads.
// The transport signature says which agency sent the request; the payload signature must be that same agency's,
// cover the whole document, and its certificate must pass the trust store like any other.
import type { X509Certificate } from 'node:crypto';
import type { SignatureInfo } from '../envelope.ts';
import { SwxError } from '../errors.ts';
import type { ParsedCert } from './certs.ts';
import type { CmsVerdict, VerifyCmsOptions } from './cms.ts';
import type { CertificateCheck } from './path.ts';
import type { SignatureVerdict } from './verdict.ts';
import type { VerifyXmlOptions, XmlVerdict } from './xmldsig.ts';
import { canonicalizations } from './xmldsig-algorithms.ts';

export interface PayloadVerifiers {
  verifyCms(der: Buffer, options?: VerifyCmsOptions): Promise<CmsVerdict>;
  verifyXml(xml: Buffer | string, options?: VerifyXmlOptions): Promise<XmlVerdict>;
}

/** A registered signing certificate and the partner it belongs to, as the partner registry holds it. */
export interface RegisteredKey {
  partner: { id: string };
  thumbprint: string;
  certificate: X509Certificate;
  /** The certificate as the trust store checks it. */
  parsed: ParsedCert;
}

export interface SignedPayloadContext {
  verifiers: PayloadVerifiers;
  /** The registered certificate with this thumbprint (base64url SHA-256 of its DER), if any. */
  keyByThumbprint(thumbprint: string): RegisteredKey | undefined;
  trust: CertificateCheck;
}

const cmsTypes = /^application\/(pkcs7-mime|x-pkcs7-mime|cms)\b/i;
const xmlTypes = /^(application|text)\/([a-z0-9.+-]*\+)?xml\b/i;
const dsigNamespace = Buffer.from('http://www.w3.org/2000/09/xmldsig#');

/** Whether a payload of this type may carry a signature of its own, which is checked over the whole payload. */
export function maySignPayload(contentType: string): boolean {
  return cmsTypes.test(contentType) || xmlTypes.test(contentType);
}

/** Which payload signature the content type announces: CMS always; XML only when the document carries one. */
export function signedPayloadKind(contentType: string, payload: Buffer): 'cms' | 'xml' | undefined {
  if (cmsTypes.test(contentType)) return 'cms';
  if (xmlTypes.test(contentType) && payload.includes(dsigNamespace)) return 'xml';
  return undefined;
}

/**
 * Checks the payload's own signature when there is one (see signedPayloadKind) and returns what was checked;
 * throws SwxError with the verdict's code when it fails, the signer is not `sender`, or the signature covers less
 * than the whole document.
 */
export async function checkSignedPayload(payload: Buffer, contentType: string, sender: string, context: SignedPayloadContext): Promise<SignatureInfo | undefined> {
  const kind = signedPayloadKind(contentType, payload);
  if (!kind) return undefined;
  const verdict = kind === 'cms'
    ? await context.verifiers.verifyCms(payload, { policy: 'live' })
    : await context.verifiers.verifyXml(payload, { policy: 'live' });
  if (!verdict.valid) throw new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, `the payload's ${kind === 'cms' ? 'CMS' : 'XML'} signature: ${verdict.detail}`);
  const signer = await senderKey(verdict, sender, context);
  if (kind === 'xml') {
    const whole = wholeDocument(verdict as XmlVerdict);
    if (!whole) throw new SwxError('SWX_SIG_WRAPPED', 'the payload\'s XML signature does not cover the whole document (only its document element, less the enveloped Signature, may be signed)');
    return info('xmldsig', verdict, signer, [whole]);
  }
  return info('cms', verdict, signer, [(verdict as CmsVerdict).detached ? 'detached content' : 'encapsulated content']);
}

/**
 * A detached CMS signature over content known by its SHA-256 (a file streamed to a store as it arrived): it must verify
 * under the live policy and be made with a registered certificate of `sender` that the trust store accepts. Throws
 * SwxError with the verdict's code otherwise; returns what was checked, the signature itself as the value kept.
 */
export async function checkDetachedSignature(signature: Buffer, sha256: Buffer, sender: string, context: SignedPayloadContext): Promise<SignatureInfo> {
  const verdict = await context.verifiers.verifyCms(signature, { sha256, policy: 'live' });
  if (!verdict.valid) throw new SwxError(verdict.code === 'SWX_OK' ? 'SWX_SIG_INVALID' : verdict.code, `the detached CMS signature: ${verdict.detail}`);
  if (!verdict.detached) throw new SwxError('SWX_BAD_REQUEST', 'the CMS signature carries its content: a detached signature (openssl cms -sign -binary, without -nodetach) is expected');
  const signer = await senderKey(verdict, sender, context);
  return { ...info('cms', verdict, signer, ['detached content']), value: signature.toString('base64') };
}

async function senderKey(verdict: SignatureVerdict, sender: string, context: SignedPayloadContext): Promise<RegisteredKey> {
  const print = verdict.signer?.thumbprint;
  const key = print ? context.keyByThumbprint(print) : undefined;
  if (!key || key.partner.id !== sender) {
    throw new SwxError('SWX_SIG_KEY_MISMATCH', `the payload is signed by ${verdict.signer?.subject ?? 'an unknown key'}, not by a registered certificate of ${sender}, who sent it`);
  }
  const refusal = await context.trust.check(key.parsed, 'agency-signing');
  if (refusal) throw new SwxError(refusal.code, `the payload's signing certificate ${key.thumbprint} of ${sender}: ${refusal.detail}`);
  return key;
}

/** What a whole-document reference may apply: canonicalisation and the enveloped-signature transform, nothing that
 *  could drop other content (an XPath filter can leave out any element, even one named Signature). */
const wholeDocumentTransforms = new Set([...Object.keys(canonicalizations), 'envelopedSignature']);

/** The document element, when a valid reference covers it with nothing left out but the enveloped signature. */
function wholeDocument(verdict: XmlVerdict): string | undefined {
  if (verdict.references?.some((reference) => reference.transforms.some((name) => !wholeDocumentTransforms.has(name)))) return undefined;
  return verdict.signedElements.find((element) => /^\/[^/]+$/.test(element.path)
    && element.excludes.length <= 1
    && element.excludes.every((excluded) => excluded.startsWith(`${element.path}/`) && /\/Signature(\[\d+\])?$/.test(excluded)))?.path;
}

function info(scheme: 'xmldsig' | 'cms', verdict: SignatureVerdict, signer: RegisteredKey, covered: string[]): SignatureInfo {
  return {
    scheme,
    algorithm: verdict.algorithms?.signature ?? '',
    keyId: signer.thumbprint,
    certThumbprint: signer.thumbprint,
    covered,
    // The signature value travels inside the payload, which the evidence keeps as received.
    value: '',
    ...(verdict.signedAt ? { createdAt: verdict.signedAt } : {}),
    certificate: signer.certificate.toString(),
  };
}
