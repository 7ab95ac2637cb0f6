// Stable error codes: the same code appears in the protocol reply, the evidence record, the console and the docs.
// A code whose refusal passes with time (every 429 and 503) names how many seconds to wait: its reply's Retry-After.

export const errorCodes = {
  SWX_AUTH_REQUIRED: { status: 401, title: 'Client certificate required' },
  SWX_AUTH_UNKNOWN_CERT: { status: 401, title: 'Client certificate not registered to any partner' },
  SWX_CERT_EXPIRED: { status: 401, title: 'Certificate is outside its validity period' },
  SWX_SIG_MISSING: { status: 401, title: 'Request is not signed' },
  SWX_SIG_INVALID: { status: 401, title: 'Signature does not verify' },
  SWX_SIG_KEY_MISMATCH: { status: 401, title: 'Signing key does not belong to the authenticated partner' },
  SWX_SIG_EXPIRED: { status: 401, title: 'Signature creation time is outside the allowed clock skew' },
  SWX_SIG_ALG_UNSUPPORTED: { status: 400, title: 'Signature or digest algorithm not supported' },
  SWX_CERT_UNTRUSTED: { status: 401, title: 'Certificate does not chain to a trusted certificate' },
  SWX_CERT_REVOKED: { status: 401, title: 'Certificate has been revoked' },
  SWX_CERT_REVOCATION_UNKNOWN: { status: 503, title: 'Revocation status cannot be established (no current CRL or OCSP answer)', retryAfterSeconds: 60 },
  SWX_CERT_USAGE: { status: 401, title: 'Certificate is not issued for this use (key usage or extended key usage)' },
  SWX_SIG_WEAK_ALG: { status: 400, title: 'Legacy algorithm (SHA-1, DSA) refused on live traffic' },
  SWX_SIG_WRAPPED: { status: 400, title: 'Signed element is not the element acted on (signature wrapping)' },
  SWX_SIG_REF_UNRESOLVED: { status: 400, title: 'Signature reference cannot be resolved' },
  SWX_DECRYPT_FAILED: { status: 400, title: 'Encrypted content cannot be decrypted: another recipient\'s key, altered or truncated ciphertext, or a part the encryption names is missing' },
  SWX_ENC_ALG_UNSUPPORTED: { status: 400, title: 'Encryption algorithm not supported, or not the one the agreed profile names' },
  SWX_DECRYPT_KEY_MISSING: { status: 400, title: 'Content is encrypted and no key to decrypt it was given' },
  SWX_XML_FORBIDDEN: { status: 400, title: 'XML with a DTD, entity declaration or processing construct that is not allowed' },
  SWX_XML_LIMIT: { status: 400, title: 'XML exceeds a size, depth, attribute or name limit' },
  SWX_XML_MALFORMED: { status: 400, title: 'XML is not well-formed' },
  SWX_TSP_MALFORMED: { status: 400, title: 'Time-stamp response or token cannot be parsed' },
  SWX_TSP_NOT_GRANTED: { status: 502, title: 'Time-stamp authority did not grant the request' },
  SWX_TSP_IMPRINT_MISMATCH: { status: 400, title: 'Time-stamp token covers other data' },
  SWX_TSP_NONCE_MISMATCH: { status: 400, title: 'Time-stamp token answers another request (nonce)' },
  SWX_TSP_POLICY_MISMATCH: { status: 400, title: 'Time-stamp token has another policy' },
  SWX_TSP_SIGNER_UNKNOWN: { status: 400, title: 'Time-stamp token signer certificate not found' },
  SWX_TSP_SIGNER_NOT_TSA: { status: 400, title: 'Time-stamp token signer is not a time-stamping certificate' },
  SWX_TSP_CERT_ID_MISMATCH: { status: 400, title: 'Time-stamp token names another signing certificate' },
  SWX_DIGEST_MISMATCH: { status: 400, title: 'Content-Digest does not match the body' },
  SWX_BAD_REQUEST: { status: 400, title: 'Malformed request' },
  SWX_HEADERS_TOO_LARGE: { status: 431, title: 'Request header block exceeds the size limit' },
  SWX_REQUEST_TIMEOUT: { status: 408, title: 'Request headers did not arrive in time' },
  SWX_CLIENT_ABORTED: { status: 400, title: 'The sender closed the connection before the request body ended' },
  SWX_TOO_LARGE: { status: 413, title: 'Message exceeds the size limit' },
  SWX_BUSY: { status: 503, title: 'The hub holds as many request bodies as it may; retry after the time given', retryAfterSeconds: 1 },
  SWX_PARTNER_BUSY: { status: 429, title: 'This agency has as many request bodies in flight as it may; retry after the time given', retryAfterSeconds: 1 },
  SWX_UNKNOWN_RECEIVER: { status: 404, title: 'Unknown receiver' },
  SWX_UNKNOWN_SERVICE: { status: 404, title: 'Unknown service' },
  SWX_DUPLICATE_CONFLICT: { status: 409, title: 'Message id already used for a different message' },
  SWX_ACL_DENIED: { status: 403, title: 'Not allowed: the sender may not use this service towards this receiver, or ask this dataset of this provider' },
  SWX_UNKNOWN_DATASET: { status: 404, title: 'Unknown query dataset' },
  SWX_PROVIDER_TIMEOUT: { status: 504, title: 'Provider did not answer the query within the deadline' },
  SWX_PROVIDER_ERROR: { status: 502, title: 'Provider failed to answer the query' },
  SWX_REPLAY: { status: 409, title: 'Request already seen (replayed signature or message id within the freshness window)' },
  SWX_SOAP_ACTION: { status: 400, title: 'SOAP action does not match the operation of the body' },
  SWX_RATE_LIMITED: { status: 429, title: 'Too many requests from this agency; retry after the time given', retryAfterSeconds: 1 },
  SWX_NOT_FOUND: { status: 404, title: 'Not found' },
  SWX_RANGE_NOT_SATISFIABLE: { status: 416, title: 'The byte range asked for is not within the payload' },
  SWX_RECEIVES_BY_PUSH: { status: 409, title: 'This agency receives by push: its deliveries go to its endpoint, not to an inbox' },
  SWX_OPS_UNAUTHORIZED: { status: 401, title: 'Operator token missing or wrong' },
  SWX_CONSOLE_UNAUTHORIZED: { status: 401, title: 'Not signed in: sign in, or send a console API token' },
  SWX_ROLE_DENIED: { status: 403, title: 'None of the caller\'s roles may use this route' },
  SWX_CSRF_REFUSED: { status: 403, title: 'A change made with the session cookie needs its CSRF token (x-csrf-token)' },
  SWX_LOCKED_OUT: { status: 429, title: 'Too many failed sign-ins for this user or address; retry after the time given', retryAfterSeconds: 60 },
  SWX_SQL_NOT_A_QUERY: { status: 400, title: 'Not one SELECT ClickHouse could read' },
  SWX_SQL_TABLE_REFUSED: { status: 403, title: 'The query reads a table that is not open to analysis' },
  SWX_SQL_READONLY: { status: 403, title: 'Refused by ClickHouse in read-only mode' },
  SWX_SQL_LIMIT: { status: 422, title: 'Stopped by ClickHouse at a limit of time, rows or memory' },
  SWX_UNAVAILABLE: { status: 503, title: 'Hub is not ready', retryAfterSeconds: 5 },
  SWX_TSA_UNAVAILABLE: { status: 503, title: 'Evidence cannot be time-stamped: the time-stamp authority has failed beyond the grace period or backlog', retryAfterSeconds: 30 },
  SWX_DELIVERY_REJECTED: { status: 502, title: 'Receiver rejected the message' },
  SWX_RECEIPT_INVALID: { status: 502, title: "Receiver's receipt does not verify" },
  SWX_RECEIPT_MISSING: { status: 504, title: 'Receiver did not answer with its receipt within the sends its agreement allows' },
  SWX_TTL_EXPIRED: { status: 410, title: 'Message time-to-live expired before delivery' },
  SWX_INTERNAL: { status: 500, title: 'Internal error' },
  SWX_MQ_BACKOUT: { status: 500, title: 'The hub failed to take this MQ message every time it tried and set it aside on the backout queue' },
} as const satisfies Record<string, { status: number; title: string; retryAfterSeconds?: number }>;

export type ErrorCode = keyof typeof errorCodes;

/**
 * An error that knows its stable code; `detail` says what failed, for whom, and what to do. `retryAfterSeconds`
 * overrides the code's own wait where the refusal knows better (a rate limiter knows when a token is back).
 */
export class SwxError extends Error {
  readonly code: ErrorCode;
  private readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(detail, options);
    this.code = code;
    this.name = 'SwxError';
    this.retryAfter = options?.retryAfterSeconds;
  }
  get status(): number {
    return errorCodes[this.code].status;
  }
  /** Whole seconds to wait before asking again, for a refusal that passes with time; else undefined. */
  get retryAfterSeconds(): number | undefined {
    const table: { status: number; retryAfterSeconds?: number } = errorCodes[this.code];
    return table.retryAfterSeconds === undefined ? undefined : Math.max(1, Math.ceil(this.retryAfter ?? table.retryAfterSeconds));
  }
}

/** RFC 9457 problem details for an error, with the stable code as `code` and as the type URI. */
export function problem(error: SwxError, instance?: string): Record<string, unknown> {
  return {
    type: `urn:swx:error:${error.code}`,
    title: errorCodes[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(instance ? { instance } : {}),
  };
}
