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

const leafScratch = Buffer.alloc(1 + hashLength);

/** H(0x00 || data): the hash a leaf enters the tree with (evidence leaves are 32-byte record hashes: no allocation). */
export function leafHash(data: Buffer): Buffer {
  if (data.length !== hashLength) return sha256(Buffer.concat([leafPrefix, data]));
  leafScratch[0] = 0x00;
  data.copy(leafScratch, 1);
  return sha256(leafScratch);
}

// One scratch buffer for interior nodes: a batch hashes thousands of them, and Buffer.concat's allocation dominated.
const scratch = Buffer.alloc(1 + 2 * hashLength);

/** H(0x01 || left || right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  if (left.length !== hashLength || right.length !== hashLength) return sha256(Buffer.concat([nodePrefix, left, right]));
  scratch[0] = 0x01;
  left.copy(scratch, 1);
  right.copy(scratch, 1 + hashLength);
  return sha256(scratch);
}

/** Every level of the tree, leaf hashes first, root last; a level's odd last node is carried up unchanged. */
function levels(leaves: Buffer[]): Buffer[][] {
  const all: Buffer[][] = [leaves.map(leafHash)];
  for (let level = all[0]!; level.length > 1; ) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? nodeHash(level[i]!, level[i + 1]!) : level[i]!);
    all.push(next);
    level = next;
  }
  return all;
}

/** A built tree: its root, and the audit path of any leaf without hashing the batch again. */
export interface MerkleTree {
  size: number;
  root: Buffer;
  proof(index: number): InclusionProof;
  /** encodeProof(proof(index)), with each node turned to hex once per tree rather than once per proof. */
  encodedProof(index: number): string;
}

/** Builds the tree once (2n-1 hashes); a batch then takes one proof per record from it. */
export function merkleTree(leaves: Buffer[]): MerkleTree {
  const size = leaves.length;
  if (size === 0) {
    const proof = (): never => {
      throw new SwxError('SWX_BAD_REQUEST', 'an empty tree has no leaf to prove');
    };
    return { size, root: sha256(Buffer.alloc(0)), proof, encodedProof: proof };
  }
  const all = levels(leaves);
  const below = all.slice(0, -1);
  /** Calls `visit` with each level's sibling of the path from leaf `index` up. */
  const walk = (index: number, visit: (level: number, sibling: number, position: number) => void) => {
    assertPosition(index, size);
    let position = index;
    below.forEach((level, depth) => {
      const sibling = position ^ 1;
      // A promoted node (last of an odd level) has no sibling on this level, so the proof skips it.
      if (sibling < level.length) visit(depth, sibling, position);
      position >>= 1;
    });
  };
  let hex: string[][] | undefined;
  return {
    size,
    root: all.at(-1)![0]!,
    proof(index: number): InclusionProof {
      const path: Buffer[] = [];
      const sides: Side[] = [];
      walk(index, (depth, sibling, position) => {
        path.push(below[depth]![sibling]!);
        sides.push(sibling < position ? 'left' : 'right');
      });
      return { index, size, path, sides };
    },
    encodedProof(index: number): string {
      hex ??= below.map((level) => level.map((node) => node.toString('hex')));
      const parts: string[] = [];
      walk(index, (depth, sibling) => parts.push(hex![depth]![sibling]!));
      return proofText(index, size, parts);
    },
  };
}

/** Merkle Tree Hash of the leaves' data (RFC 6962 2.1); the empty tree's root is SHA-256 of nothing. */
export function merkleRoot(leaves: Buffer[]): Buffer {
  return merkleTree(leaves).root;
}

function assertPosition(index: number, size: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new SwxError('SWX_BAD_REQUEST', `tree size must be a positive integer, got ${size}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new SwxError('SWX_BAD_REQUEST', `leaf index ${index} is outside a tree of ${size} leaves`);
  }
}

/** The audit path proving that leaves[index] is in the tree whose root is merkleRoot(leaves). Use merkleTree for many. */
export function inclusionProof(leaves: Buffer[], index: number): InclusionProof {
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

/** A proof as one string, `index/size:hex,hex,…`: the form evidence rows and bundles keep (the sides follow from index and size). */
export function encodeProof(proof: Pick<InclusionProof, 'index' | 'size' | 'path'>): string {
  return proofText(proof.index, proof.size, proof.path.map((node) => node.toString('hex')));
}

function proofText(index: number, size: number, hexNodes: string[]): string {
  return `${index}/${size}:${hexNodes.join(',')}`;
}

/** The inverse of encodeProof; undefined when the text is not one. */
export function decodeProof(text: string): { index: number; size: number; path: Buffer[] } | undefined {
  const match = /^(\d{1,15})\/(\d{1,15}):((?:[0-9a-f]{64})(?:,[0-9a-f]{64})*)?$/.exec(text);
  if (!match) return undefined;
  return { index: Number(match[1]), size: Number(match[2]), path: match[3] ? match[3].split(',').map((hex) => Buffer.from(hex, 'hex')) : [] };
}
