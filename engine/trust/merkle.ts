// RFC 6962 (Certificate Transparency) Merkle tree over SHA-256: one root per evidence batch, one inclusion proof per record.
// The RFC 6962 shape (odd nodes promoted, never duplicated) is used because a duplicated last leaf lets two different
// batches share a root (CVE-2012-2459), and because auditors can check our proofs with any CT tool.
import { hash } from 'node:crypto';
import { SwxError } from '../errors.ts';

/** Where a proof's sibling hash sits relative to the running hash, from the leaf up. */
export type Side = 'left' | 'right';

export interface InclusionProof {
  index: number;
  size: number;
  /** Sibling hashes from the leaf's level upwards (RFC 6962 audit path). */
  path: Buffer[];
  /** sides[i] is where path[i] goes when hashing: 'left' means H(0x01 || path[i] || running). */
  sides: Side[];
}

const leafPrefix = Buffer.from([0x00]);
const nodePrefix = Buffer.from([0x01]);
const hashLength = 32;

const sha256 = (bytes: Buffer): Buffer => hash('sha256', bytes, 'buffer');

// Hash inputs are assembled in scratch buffers: a batch hashes thousands of nodes, and allocation dominated.
const leafInput = Buffer.alloc(1 + hashLength); // [0] stays 0x00
const nodeInput = Buffer.alloc(1 + 2 * hashLength);
nodeInput[0] = 0x01;

/** H(0x00 || data): the hash a leaf enters the tree with. */
export function leafHash(data: Buffer): Buffer {
  if (data.length !== hashLength) return sha256(Buffer.concat([leafPrefix, data]));
  data.copy(leafInput, 1);
  return sha256(leafInput);
}

/** H(0x01 || left || right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  if (left.length !== hashLength || right.length !== hashLength) return sha256(Buffer.concat([nodePrefix, left, right]));
  left.copy(nodeInput, 1);
  right.copy(nodeInput, 1 + hashLength);
  return sha256(nodeInput);
}

// Inside a tree every node is the base64url text of its hash (43 characters): a digest returned as a string costs
// half what a Buffer does (no backing store per node), and proofs are these texts laid end to end, with no re-encoding.
const nodeChars = 43;
const nodeText = '[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]'; // canonical: the last character carries 2 bits, both zero

/** leafHash of the leaf data given as hex, as node text; SWX_BAD_REQUEST when the data is not hex. */
function leafNode(hex: string): string {
  if (hex.length === 2 * hashLength && leafInput.write(hex, 1, 'hex') === hashLength) return hash('sha256', leafInput, 'base64url');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new SwxError('SWX_BAD_REQUEST', `a Merkle leaf must be given as hex, got ${JSON.stringify(hex.slice(0, 80))}`);
  return hash('sha256', Buffer.concat([leafPrefix, Buffer.from(hex, 'hex')]), 'base64url');
}

function parentNode(left: string, right: string): string {
  nodeInput.write(left, 1, 'base64url');
  nodeInput.write(right, 1 + hashLength, 'base64url');
  return hash('sha256', nodeInput, 'base64url');
}

/** Every level of the tree, leaf hashes first, root last; a level's odd last node is carried up unchanged. */
function levels(leaves: readonly string[]): string[][] {
  const all = [leaves.map(leafNode)];
  for (let level = all[0]!; level.length > 1; ) {
    const next = new Array<string>((level.length + 1) >> 1);
    for (let i = 0; i + 1 < level.length; i += 2) next[i >> 1] = parentNode(level[i]!, level[i + 1]!);
    if (level.length % 2 === 1) next[next.length - 1] = level[level.length - 1]!;
    all.push(next);
    level = next;
  }
  return all;
}

/**
 * Every leaf's audit path as node texts end to end, built from the root down: the path above a node is one string
 * shared by all the leaves under it, so a level costs one concatenation per node instead of one per leaf and height.
 */
function auditPaths(all: string[][]): string[] {
  let above = [''];
  for (let depth = all.length - 2; depth >= 0; depth--) {
    const level = all[depth]!;
    const paths = new Array<string>(level.length);
    for (let i = 0; i < level.length; i++) {
      const sibling = i ^ 1;
      // A promoted node (last of an odd level) has no sibling on this level, so the path skips it.
      paths[i] = sibling < level.length ? level[sibling]! + above[i >> 1]! : above[i >> 1]!;
    }
    above = paths;
  }
  return above;
}

/** A built tree: its root, and the audit paths of its leaves without hashing the batch again. */
export interface MerkleTree {
  size: number;
  root: Buffer;
  proof(index: number): InclusionProof;
  /** Every leaf's proof as encodeProof writes it, in leaf order: what each evidence row keeps. */
  encodedProofs(): string[];
}

/**
 * Builds the tree once (2n-1 hashes) over leaves given as the hex of their data (evidence leaves are record
 * hashes, which the chain already has as hex); SWX_BAD_REQUEST when a leaf is not hex.
 */
export function merkleTree(leaves: readonly string[]): MerkleTree {
  const size = leaves.length;
  if (size === 0) {
    const proof = (): never => {
      throw new SwxError('SWX_BAD_REQUEST', 'an empty tree has no leaf to prove');
    };
    return { size, root: sha256(Buffer.alloc(0)), proof, encodedProofs: () => [] };
  }
  const all = levels(leaves);
  return {
    size,
    root: Buffer.from(all.at(-1)![0]!, 'base64url'),
    proof(index: number): InclusionProof {
      assertPosition(index, size);
      const path: Buffer[] = [];
      const sides: Side[] = [];
      let position = index;
      for (const level of all.slice(0, -1)) {
        const sibling = position ^ 1;
        if (sibling < level.length) {
          path.push(Buffer.from(level[sibling]!, 'base64url'));
          sides.push(sibling < position ? 'left' : 'right');
        }
        position >>= 1;
      }
      return { index, size, path, sides };
    },
    encodedProofs: () => auditPaths(all).map((path, index) => `${index}/${size}:${path}`),
  };
}

/** Merkle Tree Hash of the leaves' data, given as hex (RFC 6962 2.1); the empty tree's root is SHA-256 of nothing. */
export function merkleRoot(leaves: readonly string[]): Buffer {
  return merkleTree(leaves).root;
}

function assertPosition(index: number, size: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new SwxError('SWX_BAD_REQUEST', `tree size must be a positive integer, got ${size}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new SwxError('SWX_BAD_REQUEST', `leaf index ${index} is outside a tree of ${size} leaves`);
  }
}

/** The audit path proving that leaves[index] is in the tree whose root is merkleRoot(leaves). Use merkleTree for many. */
export function inclusionProof(leaves: readonly string[], index: number): InclusionProof {
  assertPosition(index, leaves.length);
  return merkleTree(leaves).proof(index);
}

/**
 * Checks an audit path (RFC 9162 2.1.3.2): the leaf's data at `index` of a `size`-leaf tree hashes up to `root`.
 * The sides follow from index and size alone, so a proof cannot be replayed at another position.
 */
export function verifyInclusion(leaf: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): boolean {
  if (!Number.isSafeInteger(size) || size < 1 || !Number.isSafeInteger(index) || index < 0 || index >= size) return false;
  if (root.length !== hashLength || proof.some((node) => node.length !== hashLength)) return false;
  let position = index;
  let last = size - 1;
  let running = leafHash(leaf);
  for (const node of proof) {
    if (last === 0) return false; // longer than the tree is high
    if (position % 2 === 1 || position === last) {
      running = nodeHash(node, running);
      // Climb past the levels where this subtree was promoted without a sibling.
      while (position % 2 === 0 && position !== 0) {
        position /= 2;
        last = Math.floor(last / 2);
      }
    } else {
      running = nodeHash(running, node);
    }
    position = Math.floor(position / 2);
    last = Math.floor(last / 2);
  }
  return last === 0 && running.equals(root);
}

/**
 * A proof as one string, `index/size:` followed by each sibling hash as 43 characters of base64url (RFC 4648 §5, no
 * padding), leaf level first, with no separator: the form evidence rows and bundles keep (the sides follow from
 * index and size). Base64url rather than hex makes a 2,000-record block's proofs a third shorter to write and store.
 */
export function encodeProof(proof: Pick<InclusionProof, 'index' | 'size' | 'path'>): string {
  if (proof.path.some((node) => node.length !== hashLength)) throw new SwxError('SWX_BAD_REQUEST', 'a proof node must be a 32-byte SHA-256 hash');
  return `${proof.index}/${proof.size}:${proof.path.map((node) => node.toString('base64url')).join('')}`;
}

const proofPattern = new RegExp(`^(\\d{1,15})/(\\d{1,15}):((?:${nodeText})*)$`);
// Proofs archived before base64url (hex nodes separated by commas) stay readable: evidence is checked for years.
const hexProofPattern = /^(\d{1,15})\/(\d{1,15}):((?:[0-9a-f]{64})(?:,[0-9a-f]{64})*)?$/;

/** The inverse of encodeProof (and reads the earlier hex form); undefined when the text is neither. */
export function decodeProof(text: string): { index: number; size: number; path: Buffer[] } | undefined {
  const match = proofPattern.exec(text);
  if (match) {
    const nodes = match[3]!;
    const path: Buffer[] = [];
    for (let at = 0; at < nodes.length; at += nodeChars) path.push(Buffer.from(nodes.slice(at, at + nodeChars), 'base64url'));
    return { index: Number(match[1]), size: Number(match[2]), path };
  }
  const hexMatch = hexProofPattern.exec(text);
  if (!hexMatch) return undefined;
  return { index: Number(hexMatch[1]), size: Number(hexMatch[2]), path: hexMatch[3] ? hexMatch[3].split(',').map((hex) => Buffer.from(hex, 'hex')) : [] };
}
