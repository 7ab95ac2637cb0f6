// The SOAP contract of the query service (即時查證), shared by the hub's connector and the reference provider.
//
// Namespace urn:swx:query:1 (prefix q). Each dataset has a WSDL 1.1 document (document/literal) at
// GET /ws/query/<dataset>?wsdl (or /ws/query/<dataset>.wsdl): one operation Query, a SOAP 1.1 and a SOAP 1.2 binding,
// soapAction urn:swx:query:1:<dataset>, one service with a port per binding at https://<host>/ws/query/<dataset>.
//
// Transport: SOAP 1.1 as text/xml with a SOAPAction header, or SOAP 1.2 as application/soap+xml; action="...".
// The envelope namespace decides the version and must agree with the Content-Type; the action must equal the
// dataset's soapAction (else SWX_SOAP_ACTION). Mutual TLS: the client certificate names the agency.
//
// Request body: q:Query = q:provider? (needed where the dataset has several providers), then one element per dataset
// key, each a string of 1-64 characters, every key exactly once (e.g. <q:declarationNo>AWCA13M4Y38561</q:declarationNo>).
//
// Answer body: q:Answer = q:queryId, q:dataset, q:provider, q:found (xsd:boolean), q:answeredAt (xsd:dateTime),
// q:record? holding the record as W3C XPath 3.1 fn:json-to-xml markup (namespace
// http://www.w3.org/2005/xpath-functions: map, array, string, number, boolean, null with key attributes), so that
// JSON and XML convert both ways without loss; strings with characters XML cannot carry use escaped="true".
//
// WS-Security (X.509 token profile), both directions: one wsse:Security header holding a wsu:Timestamp (Created and
// Expires), a base64 X.509v3 wsse:BinarySecurityToken and one ds:Signature whose KeyInfo is a SecurityTokenReference
// to that token, covering soap:Body and wsu:Timestamp by wsu:Id. Created may be at most the clock skew in the future
// and at most the freshness window (default 300 s) old; Expires must not have passed. A signature seen before (same
// signer, same signed content) is refused as SWX_REPLAY. The token's certificate must be registered to the agency
// that authenticated the TLS connection (else SWX_SIG_KEY_MISMATCH). The hub signs every answer and fault it sends.
//
// Faults: SOAP 1.1 (HTTP 500, faultcode soap:Client for 4xx codes, soap:Server for 5xx) or SOAP 1.2 (the code's HTTP
// status, Sender or Receiver); the detail holds q:code (the SWX_* code), q:status (its HTTP status) and q:messageId
// when the refusal was evidenced under an id.
//
// Hub to provider: the hub posts a SOAP 1.1 q:Query (q:provider = the provider itself, then the keys) to the provider's
// registered query endpoint, with a signed SOAP header q:Context = q:queryId, q:dataset, q:asker: which query this is
// (the provider's q:Answer must carry the same q:queryId), for which dataset (the SOAPAction must name the same), and
// which agency asks. The provider answers a q:Answer signed by one of its registered certificates, or a fault.

export { soapNamespaces, type SoapVersion } from '../../engine/xml/soap.ts';

export const queryNamespace = 'urn:swx:query:1';
export const jsonXmlNamespace = 'http://www.w3.org/2005/xpath-functions';
export const wsaNamespace = 'http://www.w3.org/2005/08/addressing';

/** Where the hub serves a dataset's WSDL and takes its queries. */
export const queryPath = (datasetId: string) => `/ws/query/${datasetId}`;

export const soapAction = (datasetId: string) => `${queryNamespace}:${datasetId}`;
