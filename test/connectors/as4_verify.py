#!/usr/bin/python3
# An independent verifier of AS4 WS-Security signatures for the tests, on Debian's python3-cryptography and lxml:
# what Debian's xmlsec1 cannot check (cid: references with the SwA Attachment-Content-Signature-Transform, and
# Ed25519). It shares nothing with swx: it parses the MIME body with Python's email package, canonicalises with
# lxml (libxml2's exclusive c14n), digests every reference and checks the SignatureValue over the canonical SignedInfo.
#
# usage: as4_verify.py MESSAGE CONTENT_TYPE CERT_PEM
#   MESSAGE is the HTTP body (a SOAP envelope, or multipart/related), CONTENT_TYPE its Content-Type.
# Prints one JSON line {"valid", "signature", "references": [{"uri", "valid"}]}; exits 0 only when all is valid.
import base64
import hashlib
import json
import sys
from urllib.parse import unquote
from email.parser import BytesParser
from email.policy import HTTP

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from lxml import etree

DS = 'http://www.w3.org/2000/09/xmldsig#'
EC = 'http://www.w3.org/2001/10/xml-exc-c14n#'
WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'
WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd'
EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#'
SWA_CONTENT = 'http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform'
DIGESTS = {
    'http://www.w3.org/2001/04/xmlenc#sha256': hashlib.sha256,
    'http://www.w3.org/2001/04/xmldsig-more#sha384': hashlib.sha384,
    'http://www.w3.org/2001/04/xmlenc#sha512': hashlib.sha512,
}
MORE = 'http://www.w3.org/2001/04/xmldsig-more#'
SIGNATURES = {
    MORE + 'rsa-sha256': ('rsa', hashes.SHA256),
    MORE + 'rsa-sha384': ('rsa', hashes.SHA384),
    MORE + 'rsa-sha512': ('rsa', hashes.SHA512),
    MORE + 'ecdsa-sha256': ('ecdsa', hashes.SHA256),
    MORE + 'ecdsa-sha384': ('ecdsa', hashes.SHA384),
    'http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519': ('ed25519', None),
}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


def parts_of(body, content_type):
    """The SOAP part and the attachments by Content-ID (without angle brackets)."""
    if not content_type.lower().startswith('multipart/'):
        return body, {}
    message = BytesParser(policy=HTTP).parsebytes(b'Content-Type: ' + content_type.encode() + b'\r\n\r\n' + body)
    start = message.get_param('start')
    parts = list(message.iter_parts())
    bare = lambda value: (value or '').strip().strip('<>').strip()
    root = next((p for p in parts if start and bare(p['Content-ID']) == bare(start)), parts[0])
    attachments = {bare(p['Content-ID']): p for p in parts if p is not root}
    return root.get_payload(decode=True), attachments


def prefixes(transform):
    inclusive = transform.find('{%s}InclusiveNamespaces' % EC) if transform is not None else None
    return inclusive.get('PrefixList').split() if inclusive is not None and inclusive.get('PrefixList') else None


def c14n(element, prefix_list):
    return etree.tostring(element, method='c14n', exclusive=True, with_comments=False, inclusive_ns_prefixes=prefix_list)


def attachment_octets(part):
    """SwA 1.1 5.4.2: XML content in exclusive c14n, other text with CR LF line ends, anything else as it is."""
    content = part.get_payload(decode=True)
    kind = part.get_content_type()
    if kind in ('text/xml', 'application/xml') or kind.endswith('+xml'):
        return c14n(etree.fromstring(content, PARSER), None)
    if kind.startswith('text/'):
        return content.replace(b'\r\n', b'\n').replace(b'\r', b'\n').replace(b'\n', b'\r\n')
    return content


def by_id(root, identifier):
    found = [e for e in root.iter() if isinstance(e.tag, str) and identifier in (e.get('{%s}Id' % WSU), e.get('Id'), e.get('id'), e.get('ID'))]
    if len(found) != 1:
        raise ValueError('%d elements carry Id %s' % (len(found), identifier))
    return found[0]


def verify_value(public_key, algorithm, value, data):
    kind, digest = SIGNATURES[algorithm]
    if kind == 'rsa':
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(value, data, padding.PKCS1v15(), digest())
    elif kind == 'ecdsa':
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        half = len(value) // 2
        der = utils.encode_dss_signature(int.from_bytes(value[:half], 'big'), int.from_bytes(value[half:], 'big'))
        public_key.verify(der, data, ec.ECDSA(digest()))
    else:
        assert isinstance(public_key, ed25519.Ed25519PublicKey)
        public_key.verify(value, data)


def main():
    message_path, content_type, cert_path = sys.argv[1:4]
    with open(message_path, 'rb') as handle:
        envelope, attachments = parts_of(handle.read(), content_type)
    with open(cert_path, 'rb') as handle:
        certificate = x509.load_pem_x509_certificate(handle.read())
    root = etree.fromstring(envelope, PARSER)
    signature = root.find('.//{%s}Security/{%s}Signature' % (WSSE, DS))
    signed_info = signature.find('{%s}SignedInfo' % DS)
    # The signer's token must be the certificate given.
    token = root.find('.//{%s}Security/{%s}BinarySecurityToken' % (WSSE, WSSE))
    token_matches = token is not None and base64.b64decode(''.join(token.text.split())) == certificate.public_bytes(serialization.Encoding.DER)
    results = []
    for reference in signed_info.findall('{%s}Reference' % DS):
        uri = reference.get('URI')
        transforms = reference.findall('{%s}Transforms/{%s}Transform' % (DS, DS))
        algorithms = [t.get('Algorithm') for t in transforms]
        try:
            if uri.lower().startswith('cid:'):
                part = attachments[unquote(uri[4:])]
                if algorithms != [SWA_CONTENT]:
                    raise ValueError('unexpected transforms %s' % algorithms)
                octets = attachment_octets(part)
            else:
                if algorithms != [EXC_C14N]:
                    raise ValueError('unexpected transforms %s' % algorithms)
                octets = c14n(by_id(root, uri[1:]), prefixes(transforms[0]))
            digest = DIGESTS[reference.find('{%s}DigestMethod' % DS).get('Algorithm')](octets).digest()
            expected = base64.b64decode(''.join(reference.find('{%s}DigestValue' % DS).text.split()))
            results.append({'uri': uri, 'valid': digest == expected})
        except Exception as error:  # noqa: BLE001 - a reference that cannot be processed is invalid, and says why
            results.append({'uri': uri, 'valid': False, 'error': str(error)})
    method = signed_info.find('{%s}CanonicalizationMethod' % DS)
    algorithm = signed_info.find('{%s}SignatureMethod' % DS).get('Algorithm')
    value = base64.b64decode(''.join(signature.find('{%s}SignatureValue' % DS).text.split()))
    try:
        if method.get('Algorithm') != EXC_C14N:
            raise ValueError('SignedInfo is not in exclusive c14n')
        verify_value(certificate.public_key(), algorithm, value, c14n(signed_info, prefixes(method)))
        signature_valid = True
    except (InvalidSignature, AssertionError, KeyError, ValueError):
        signature_valid = False
    valid = signature_valid and token_matches and bool(results) and all(r['valid'] for r in results)
    print(json.dumps({'valid': valid, 'signature': signature_valid, 'token': token_matches, 'algorithm': algorithm, 'references': results}))
    sys.exit(0 if valid else 1)


if __name__ == '__main__':
    main()
