// The naive XMLDSig path: xml-crypto with @xmldom/xmldom and xpath, written as xml-crypto's README shows, for the
// crypto bench to measure swx's own path against. Not used by the hub.
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import xpath from 'xpath';

/** An enveloped RSA-SHA256 signature over the whole document, the certificate in KeyInfo. */
export function naiveSignXml(xml: string, keyPem: string, certPem: string): string {
  const sig = new SignedXml({
    privateKey: keyPem,
    publicCert: certPem,
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  });
  sig.addReference({
    xpath: '/*',
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    isEmptyUri: true,
  });
  sig.computeSignature(xml);
  return sig.getSignedXml();
}

export function naiveVerifyXml(xml: string, certPem: string): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signature = xpath.select1("//*[local-name(.)='Signature' and namespace-uri(.)='http://www.w3.org/2000/09/xmldsig#']", doc as unknown as Node);
  const sig = new SignedXml({ publicCert: certPem, getCertFromKeyInfo: () => null });
  sig.loadSignature(signature as Node);
  return sig.checkSignature(xml);
}
