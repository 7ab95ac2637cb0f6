// Bounds on what the MIME, mail and HTTP parsers accept: a message beyond them is refused before it costs memory or time.

export interface MimeLimits {
  /** The whole message as received. */
  maxBytes: number;
  /** One header block, all its fields together. */
  maxHeaderBytes: number;
  /** Fields in one header block. */
  maxHeaderFields: number;
  /** Body parts in the whole message, nested ones included. */
  maxParts: number;
  /** Multiparts inside multiparts. */
  maxDepth: number;
}

// 64 MiB is the hub's default largest message (SWX_MAX_BODY_BYTES); real ebMS/AS4 messages carry a handful of parts.
export const defaultMimeLimits: MimeLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxHeaderFields: 256,
  maxParts: 1000,
  maxDepth: 8,
};
