#!/usr/bin/python3
# An independent decrypter for what swx encrypts (WS-Security SwA 1.1, XML Encryption 1.1): the XML read with lxml, the
# cryptography done with python3-cryptography only, nothing of swx's. Usage:
#   xmlenc_decrypt.py ENVELOPE.xml KEY.pem CID=CIPHERTEXT_FILE...   writes CIPHERTEXT_FILE.plain for each part
#   xmlenc_decrypt.py ENCRYPTED_DATA.xml KEY.pem                     writes the plaintext of a CipherValue to stdout
# Prints one JSON line: each part's MimeType and the algorithms it met. Any failure exits 1 with the reason.
import base64
import json
import sys
from urllib.parse import unquote

from lxml import etree
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

NS = {
    'xenc': 'http://www.w3.org/2001/04/xmlenc#',
    'xenc11': 'http://www.w3.org/2009/xmlenc11#',
    'ds': 'http://www.w3.org/2000/09/xmldsig#',
    'dsig11': 'http://www.w3.org/2009/xmldsig11#',
    'more': 'http://www.w3.org/2021/04/xmldsig-more#',
    'wsse': 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
}
HASHES = {
    'http://www.w3.org/2000/09/xmldsig#sha1': hashes.SHA1,
    'http://www.w3.org/2001/04/xmlenc#sha256': hashes.SHA256,
}
MGFS = {
    'http://www.w3.org/2009/xmlenc11#mgf1sha1': hashes.SHA1,
    'http://www.w3.org/2009/xmlenc11#mgf1sha256': hashes.SHA256,
}


def one(node, path):
    found = node.xpath(path, namespaces=NS)
    if len(found) != 1:
        raise SystemExit(f'expected one {path}, found {len(found)}')
    return found[0]


def b64(node):
    return base64.b64decode(''.join(node.text.split()))


def content_key(encrypted_key, private_key, used):
    method = one(encrypted_key, 'xenc:EncryptionMethod')
    algorithm = method.get('Algorithm')
    used.append(algorithm)
    wrapped = b64(one(encrypted_key, 'xenc:CipherData/xenc:CipherValue'))
    if algorithm in ('http://www.w3.org/2009/xmlenc11#rsa-oaep', 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p'):
        digest = method.xpath('ds:DigestMethod/@Algorithm', namespaces=NS)
        digest = HASHES[digest[0] if digest else 'http://www.w3.org/2000/09/xmldsig#sha1']
        mgf = method.xpath('xenc11:MGF/@Algorithm', namespaces=NS)
        if algorithm.endswith('mgf1p') or not mgf:
            mgf = hashes.SHA1
        else:
            mgf = MGFS[mgf[0]]
        used.append(f'OAEP {digest.name} MGF1-{mgf.name}')
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return private_key.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(mgf()), algorithm=digest(), label=None))
    if algorithm == 'http://www.w3.org/2001/04/xmlenc#kw-aes128':
        agreement = one(encrypted_key, 'ds:KeyInfo/xenc:AgreementMethod')
        used.append(agreement.get('Algorithm'))
        assert agreement.get('Algorithm') == 'http://www.w3.org/2021/04/xmldsig-more#x25519'
        derivation = one(agreement, 'xenc11:KeyDerivationMethod')
        used.append(derivation.get('Algorithm'))
        assert derivation.get('Algorithm') == 'http://www.w3.org/2021/04/xmldsig-more#hkdf'
        params = one(derivation, 'more:HKDFParams')
        assert one(params, 'more:PRF').get('Algorithm') == 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256'
        salt = params.xpath('more:Salt', namespaces=NS)
        info = params.xpath('more:Info', namespaces=NS)
        length = int(one(params, 'more:KeyLength').text)
        originator = serialization.load_der_public_key(b64(one(agreement, 'xenc:OriginatorKeyInfo/dsig11:DEREncodedKeyValue')))
        assert isinstance(private_key, x25519.X25519PrivateKey) and isinstance(originator, x25519.X25519PublicKey)
        shared = private_key.exchange(originator)
        kek = HKDF(algorithm=hashes.SHA256(), length=length, salt=b64(salt[0]) if salt else None,
                   info=b64(info[0]) if info else None).derive(shared)
        return aes_key_unwrap(kek, wrapped)
    raise SystemExit(f'key algorithm {algorithm} is not known here')


def open_gcm(key, sealed):
    # xmlenc 1.1 5.2.4: IV (96 bits) || ciphertext || tag (128 bits)
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], None)


def main():
    document = etree.parse(sys.argv[1]).getroot()
    with open(sys.argv[2], 'rb') as handle:
        private_key = serialization.load_pem_private_key(handle.read(), password=None)
    used = []
    if document.tag == '{%s}EncryptedData' % NS['xenc']:
        key = content_key(one(document, 'ds:KeyInfo/xenc:EncryptedKey'), private_key, used)
        used.append(one(document, 'xenc:EncryptionMethod').get('Algorithm'))
        sys.stdout.buffer.write(open_gcm(key, b64(one(document, 'xenc:CipherData/xenc:CipherValue'))))
        return
    security = one(document, '//wsse:Security')
    encrypted_key = one(security, 'xenc:EncryptedKey')
    key = content_key(encrypted_key, private_key, used)
    files = dict(arg.split('=', 1) for arg in sys.argv[3:])
    parts = {}
    for reference in encrypted_key.xpath('xenc:ReferenceList/xenc:DataReference/@URI', namespaces=NS):
        data = one(security, f'xenc:EncryptedData[@Id="{reference[1:]}"]')
        algorithm = one(data, 'xenc:EncryptionMethod').get('Algorithm')
        assert algorithm == 'http://www.w3.org/2009/xmlenc11#aes128-gcm', algorithm
        cid = unquote(one(data, 'xenc:CipherData/xenc:CipherReference').get('URI')[4:])
        with open(files[cid], 'rb') as handle:
            plain = open_gcm(key, handle.read())
        with open(files[cid] + '.plain', 'wb') as handle:
            handle.write(plain)
        parts[cid] = {'mimeType': data.get('MimeType'), 'type': data.get('Type'), 'bytes': len(plain)}
    print(json.dumps({'algorithms': used, 'parts': parts}))


try:
    main()
except SystemExit:
    raise
except Exception as error:  # the reason, for the test's message
    print(f'{type(error).__name__}: {error}', file=sys.stderr)
    sys.exit(1)
