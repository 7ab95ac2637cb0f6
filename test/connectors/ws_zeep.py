"""zeep as an asking agency's SOAP client, judging the hub's SOAP side from outside.

Reads a JSON job on stdin: {"wsdl", "service", "cert", "key", "alg" ("ecdsa" or "rsa"), "ca", "hubCert", "calls": [{"binding", "keys"}]}.
Loads the WSDL, signs each query with zeep's BinarySignature (ECDSA-SHA256 or RSA-SHA256, SHA-256 digests)
after adding a wsu:Timestamp, verifies the hub's signed answer with the hub's certificate (zeep's verify_envelope),
converts the q:record from fn:json-to-xml markup back to JSON with its own code, and prints a JSON list of outcomes.
"""
import json
import sys
from datetime import datetime, timedelta, timezone

import requests
import xmlsec
import zeep
from zeep.exceptions import Fault, SignatureVerificationFailed
from zeep.transports import Transport
from zeep.wsse.signature import BinarySignature, verify_envelope
from zeep.wsse.utils import WSU, get_security_header

FN = "{http://www.w3.org/2005/xpath-functions}"
Q = "{urn:swx:query:1}"


class SignedWithTimestamp:
    """zeep's BinarySignature over Body and a fresh wsu:Timestamp; answers must verify with the hub's certificate."""

    def __init__(self, key, cert, alg, hub_cert):
        method = xmlsec.Transform.RSA_SHA256 if alg == "rsa" else xmlsec.Transform.ECDSA_SHA256
        self.signature = BinarySignature(key, cert, signature_method=method, digest_method=xmlsec.Transform.SHA256)
        self.hub_cert = hub_cert

    def apply(self, envelope, headers):
        security = get_security_header(envelope)
        now = datetime.now(timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        security.append(WSU.Timestamp(WSU.Created(now.strftime(fmt)), WSU.Expires((now + timedelta(minutes=5)).strftime(fmt))))
        return self.signature.apply(envelope, headers)

    def verify(self, envelope):
        verify_envelope(envelope, self.hub_cert)
        return envelope


def to_json(element):
    """XPath 3.1 fn:xml-to-json, enough of it for records: map, array, string, number, boolean, null."""
    name = element.tag[len(FN):]
    if name == "map":
        return {child.get("key"): to_json(child) for child in element}
    if name == "array":
        return [to_json(child) for child in element]
    text = element.text or ""
    if name == "string":
        return json.loads('"' + text + '"') if element.get("escaped") == "true" else text
    if name == "number":
        return json.loads(text)
    if name == "boolean":
        return text.strip() in ("true", "1")
    if name == "null":
        return None
    raise ValueError("not fn:json-to-xml: " + element.tag)


def main():
    job = json.load(sys.stdin)
    session = requests.Session()
    # REQUESTS_CA_BUNDLE in the environment would override session.verify (a requests quirk): ignore the environment.
    session.trust_env = False
    session.cert = (job["cert"], job["key"])
    session.verify = job["ca"]
    client = zeep.Client(job["wsdl"], transport=Transport(session=session),
                         wsse=SignedWithTimestamp(job["key"], job["cert"], job["alg"], job["hubCert"]))
    outcomes = []
    for call in job["calls"]:
        service = client.bind(job["service"], call["binding"])
        try:
            answer = service.Query(**call["keys"])
            record = None
            if answer.record is not None:
                content = answer.record._value_1
                record = to_json(content[0] if isinstance(content, list) else content)
            outcomes.append({"answer": {"queryId": answer.queryId, "dataset": answer.dataset, "provider": answer.provider,
                                        "found": answer.found, "record": record}})
        except Fault as fault:
            detail = fault.detail
            code = detail.find(Q + "code") if detail is not None else None
            outcomes.append({"fault": code.text if code is not None else None, "message": fault.message})
        except SignatureVerificationFailed:
            outcomes.append({"unverified": True})
    print(json.dumps(outcomes))


main()
