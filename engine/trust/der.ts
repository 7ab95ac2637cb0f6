// Strict DER (X.690) reading and writing for the fast signature paths: views over the input without copying, and
// a refusal (DerError) for anything that is not the one canonical encoding, so a caller can hand such input to the
// general library (pkijs) instead of guessing what a lenient parser would have made of it.

export class DerError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'DerError';
  }
}

/** Identifier octets of the types the trust core reads (low tag numbers only; DER's high-tag form is refused). */
export const tags = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  sequence: 0x30,
  set: 0x31,
  utcTime: 0x17,
  generalizedTime: 0x18,
} as const;

/** Context-specific [n]: IMPLICIT primitive (0x80 | n) or constructed / EXPLICIT (0xa0 | n). */
export const context = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n;

export interface DerLimits {
  /** Nesting depth of constructed elements. */
  maxDepth: number;
  /** Elements in the whole input: bounds the memory a hostile input can make us spend. */
  maxNodes: number;
  maxBytes: number;
}

export const defaultLimits: DerLimits = { maxDepth: 32, maxNodes: 100_000, maxBytes: 64 * 1024 * 1024 };

export interface ReadOptions {
  limits?: DerLimits;
  /**
   * Constructed elements to leave unread: their length is checked, their contents are not (children stay empty).
   * For parts the caller reads once and caches, such as the certificates a message carries.
   */
  opaque?: (tag: number, depth: number, parentTag: number) => boolean;
  /** Filled with the number of elements read (opaque ones count as one). */
  tally?: { elements: number };
}

/** One element: tag, and views of its encoding and contents in the input. */
export class Der {
  constructor(
    readonly tag: number,
    readonly source: Buffer,
    readonly start: number,
    readonly valueStart: number,
    readonly end: number,
    /** The elements inside a constructed one, in order; empty for a primitive. */
    readonly children: readonly Der[],
  ) {}

  get constructed(): boolean {
    return (this.tag & 0x20) !== 0;
  }

  /** The whole TLV. */
  get bytes(): Buffer {
    return this.source.subarray(this.start, this.end);
  }

  /** The contents octets. */
  get value(): Buffer {
    return this.source.subarray(this.valueStart, this.end);
  }

  /** The child at `index`, which must have `tag`. */
  child(index: number, tag: number, what: string): Der {
    const found = this.children[index];
    if (!found || found.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found ${found ? `0x${found.tag.toString(16)}` : 'nothing'}`, found?.start ?? this.end);
    return found;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads one DER element filling all of `input` (no trailing bytes), with every constructed element parsed down to its
 * primitives and each primitive of a universal type checked for its canonical form. Throws DerError otherwise.
 */
export function readDer(input: Buffer, options: ReadOptions = {}): Der {
  const limits = options.limits ?? defaultLimits;
  if (!Buffer.isBuffer(input)) throw new DerError('not bytes', 0);
  if (input.length > limits.maxBytes) throw new DerError(`input of ${input.length} bytes exceeds ${limits.maxBytes}`, 0);
  const reader: Reader = { input, nodes: limits.maxNodes, maxDepth: limits.maxDepth, opaque: options.opaque };
  const root = element(reader, 0, input.length, 0, 0);
  if (root.end !== input.length) throw new DerError(`${input.length - root.end} bytes after the element`, root.end);
  if (options.tally) options.tally.elements = limits.maxNodes - reader.nodes;
  return root;
}

interface Reader {
  input: Buffer;
  /** Elements still allowed. */
  nodes: number;
  maxDepth: number;
  opaque: ReadOptions['opaque'];
}

function element(reader: Reader, start: number, limit: number, depth: number, parentTag: number): Der {
  const input = reader.input;
  if (--reader.nodes < 0) throw new DerError('too many elements', start);
  if (start + 2 > limit) throw new DerError('truncated element header', start);
  const tag = input[start]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported', start);
  let length = input[start + 1]!;
  let valueStart = start + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError('indefinite length (BER, not DER)', start);
    if (count > 4) throw new DerError('length field too long', start);
    if (valueStart + count > limit) throw new DerError('truncated length', start);
    if (input[valueStart] === 0) throw new DerError('length with a leading zero octet', start);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[valueStart + i]!;
    if (length < 0x80) throw new DerError('long form for a short length', start);
    valueStart += count;
  }
  const end = valueStart + length;
  if (end > limit) throw new DerError('length runs past its container', start);
  if (!(tag & 0x20)) {
    if ((tag & 0xc0) === 0) checkUniversal(tag, input, valueStart, end, start);
    return new Der(tag, input, start, valueStart, end, []);
  }
  if ((tag & 0xc0) === 0 && tag !== tags.sequence && tag !== tags.set) throw new DerError(`universal type ${tag & 0x1f} must be primitive in DER`, start);
  if (reader.opaque?.(tag, depth, parentTag)) return new Der(tag, input, start, valueStart, end, []);
  if (depth >= reader.maxDepth) throw new DerError('nested too deeply', start);
  const children: Der[] = [];
  for (let at = valueStart; at < end; ) {
    const child = element(reader, at, end, depth + 1, tag);
    children.push(child);
    at = child.end;
  }
  return new Der(tag, input, start, valueStart, end, children);
}

const plainStrings = new Set([0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1a, 0x1b]); // Numeric .. General: any octets

/** The canonical-form rules of X.690 for the universal primitives; other universal types are refused. */
function checkUniversal(tag: number, input: Buffer, from: number, to: number, at: number): void {
  const length = to - from;
  switch (tag) {
    case tags.boolean:
      if (length !== 1 || (input[from] !== 0 && input[from] !== 0xff)) throw new DerError('BOOLEAN is not one octet 00 or FF', at);
      return;
    case tags.integer:
    case 0x0a: // ENUMERATED
      if (length === 0) throw new DerError('empty INTEGER', at);
      if (length > 1 && ((input[from] === 0 && input[from + 1]! < 0x80) || (input[from] === 0xff && input[from + 1]! >= 0x80))) throw new DerError('INTEGER not in its shortest form', at);
      return;
    case tags.bitString: {
      if (length === 0) throw new DerError('BIT STRING without its unused-bits octet', at);
      const unused = input[from]!;
      if (unused > 7 || (length === 1 && unused !== 0)) throw new DerError('BIT STRING unused-bits count out of range', at);
      if (unused && (input[to - 1]! & ((1 << unused) - 1))) throw new DerError('BIT STRING with non-zero unused bits', at);
      return;
    }
    case tags.octetString:
      return;
    case tags.null:
      if (length !== 0) throw new DerError('NULL with contents', at);
      return;
    case tags.oid:
      if (length === 0) throw new DerError('empty OBJECT IDENTIFIER', at);
      if (input[to - 1]! & 0x80) throw new DerError('OBJECT IDENTIFIER ends inside a sub-identifier', at);
      for (let i = from; i < to; i++) {
        if (input[i] === 0x80 && (i === from || !(input[i - 1]! & 0x80))) throw new DerError('OBJECT IDENTIFIER sub-identifier with a leading zero', at);
      }
      return;
    case tags.utf8String:
      try {
        utf8.decode(input.subarray(from, to));
      } catch {
        throw new DerError('UTF8String is not valid UTF-8', at);
      }
      return;
    case 0x1e: // BMPString
      if (length % 2) throw new DerError('BMPString of an odd length', at);
      return;
    case 0x1c: // UniversalString
      if (length % 4) throw new DerError('UniversalString length is not a multiple of 4', at);
      return;
    case tags.utcTime:
    case tags.generalizedTime:
      timeFrom(tag, input.subarray(from, to), at);
      return;
    default:
      if (!plainStrings.has(tag)) throw new DerError(`universal type ${tag} is not supported`, at);
  }
}

const utcForm = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const generalizedForm = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d*[1-9]))?Z$/;

/** UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSS[.fff]Z) in their DER forms. */
function timeFrom(tag: number, value: Buffer, at: number): Date {
  const text = value.toString('latin1');
  const match = (tag === tags.utcTime ? utcForm : generalizedForm).exec(text);
  if (!match) throw new DerError(`${tag === tags.utcTime ? 'UTCTime' : 'GeneralizedTime'} ${JSON.stringify(text)} is not in its DER form`, at);
  const [, y, mo, d, h, mi, s, fraction] = match;
  let year = Number(y);
  if (tag === tags.utcTime) year += year < 50 ? 2000 : 1900;
  const ms = fraction ? Math.floor(1000 * Number(`0.${fraction}`)) : 0;
  const date = new Date(Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms));
  // Date.UTC rolls 31 February into March: a date that does not come back the same is not a date.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || date.getUTCHours() !== Number(h) || date.getUTCMinutes() !== Number(mi) || date.getUTCSeconds() !== Number(s)) {
    throw new DerError(`time ${JSON.stringify(text)} does not exist`, at);
  }
  return date;
}

// ---------------------------------------------------------------- values

function expectTag(node: Der, tag: number, what: string): void {
  if (node.tag !== tag) throw new DerError(`${what} is not tag 0x${tag.toString(16)}`, node.start);
}

/** Dotted form of an OBJECT IDENTIFIER (arcs beyond 2^53 exactly, through BigInt). */
export function oidOf(node: Der): string {
  expectTag(node, tags.oid, 'OBJECT IDENTIFIER');
  const arcs: (number | bigint)[] = [];
  let arc: number | bigint = 0;
  for (let i = node.valueStart; i < node.end; i++) {
    const byte = node.source[i]!;
    if (typeof arc === 'number' && arc >= 2 ** 45) arc = BigInt(arc);
    arc = typeof arc === 'number' ? arc * 128 + (byte & 0x7f) : (arc << 7n) | BigInt(byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0) {
      const first = arc < 40 ? 0 : arc < 80 ? 1 : 2;
      arcs.push(first, typeof arc === 'number' ? arc - first * 40 : arc - BigInt(first * 40));
    } else {
      arcs.push(arc);
    }
    arc = 0;
  }
  return arcs.join('.');
}

/** The magnitude of a non-negative INTEGER as big-endian bytes without leading zeros ("00" for zero); throws if negative. */
export function unsignedOf(node: Der): Buffer {
  expectTag(node, tags.integer, 'INTEGER');
  const value = node.value;
  if (value[0]! & 0x80) throw new DerError('negative INTEGER', node.start);
  return value.length > 1 && value[0] === 0 ? value.subarray(1) : value;
}

/** A small non-negative INTEGER (versions, counters). */
export function smallIntegerOf(node: Der): number {
  const bytes = unsignedOf(node);
  if (bytes.length > 6) throw new DerError('INTEGER too large', node.start);
  return bytes.readUIntBE(0, bytes.length);
}

/** UTCTime or GeneralizedTime as a Date. */
export function timeOf(node: Der): Date {
  if (node.tag !== tags.utcTime && node.tag !== tags.generalizedTime) throw new DerError('not a time', node.start);
  return timeFrom(node.tag, node.value, node.start);
}

/** The bits of a BIT STRING without its unused-bits octet. */
export function bitsOf(node: Der): Buffer {
  expectTag(node, tags.bitString, 'BIT STRING');
  return node.source.subarray(node.valueStart + 1, node.end);
}

// ---------------------------------------------------------------- writing

function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV around already encoded contents. */
export function encode(tag: number, ...contents: Buffer[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), lengthOctets(body.length), body]);
}

export function encodeOid(dotted: string): Buffer {
  if (!/^[0-2](\.\d+)+$/.test(dotted)) throw new TypeError(`${JSON.stringify(dotted)} is not an OBJECT IDENTIFIER`);
  const [first, second, ...rest] = dotted.split('.').map(BigInt) as [bigint, bigint, ...bigint[]];
  const bytes: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    const group = [Number(arc & 0x7fn)];
    for (let higher = arc >> 7n; higher > 0n; higher >>= 7n) group.unshift(Number(higher & 0x7fn) | 0x80);
    bytes.push(...group);
  }
  return encode(tags.oid, Buffer.from(bytes));
}

/** A non-negative INTEGER from its unsigned big-endian magnitude (leading zeros dropped, a 00 added before a high bit). */
export function encodeUnsigned(value: bigint | Buffer): Buffer {
  if (typeof value === 'bigint' && value < 0n) throw new RangeError('a negative value where a non-negative INTEGER is required');
  const hex = typeof value === 'bigint' ? value.toString(16) : '';
  let bytes = typeof value === 'bigint' ? Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex') : value;
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  return encode(tags.integer, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

/** GeneralizedTime with milliseconds when there are any (trailing zeros dropped, as DER requires). */
export function encodeGeneralizedTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-27T10:11:12.345Z
  const whole = iso.slice(0, 19).replace(/[-T:]/g, '');
  const ms = iso.slice(20, 23).replace(/0+$/, '');
  return encode(tags.generalizedTime, Buffer.from(`${whole}${ms ? `.${ms}` : ''}Z`, 'latin1'));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds. */
export function encodeTime(date: Date): Buffer {
  const digits = date.toISOString().slice(0, 19).replace(/[-T:]/g, ''); // YYYYMMDDHHMMSS
  return date.getUTCFullYear() < 2050 && date.getUTCFullYear() >= 1950
    ? encode(tags.utcTime, Buffer.from(`${digits.slice(2)}Z`, 'latin1'))
    : encode(tags.generalizedTime, Buffer.from(`${digits}Z`, 'latin1'));
}

/** A DER SET OF: elements ordered by their encodings (X.690 11.6). */
export function encodeSetOf(elements: Buffer[]): Buffer {
  return encode(tags.set, ...[...elements].sort(Buffer.compare));
}
