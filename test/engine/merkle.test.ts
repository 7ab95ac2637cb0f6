// Batch evidence proofs: our Merkle roots and audit paths match RFC 6962 and Certificate Transparency's published vectors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeProof, encodeProof, inclusionProof, leafHash, merkleRoot, merkleTree, nodeHash, verifyInclusion } from '../../engine/trust/index.ts';

const hex = (bytes: Buffer) => bytes.toString('hex');
const unhex = (text: string) => Buffer.from(text, 'hex');

// The leaves and tree heads published with Certificate Transparency's reference implementation (RFC 6962 test data).
const ctLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const ctRoots = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// [leaf index (0-based), tree size, audit path]
const ctPaths: [number, number, string[]][] = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

const records = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`evidence record ${i}`));

test('tree heads match RFC 6962 for every size 0..8', () => {
  for (let size = 0; size <= ctLeaves.length; size++) assert.is(hex(merkleRoot(ctLeaves.slice(0, size))), ctRoots[size], `size ${size}`);
});

test('audit paths match the published ones and verify', () => {
  for (const [index, size, path] of ctPaths) {
    const proof = inclusionProof(ctLeaves.slice(0, size), index);
    assert.equal(proof.path.map(hex), path, `leaf ${index} of ${size}`);
    assert.ok(verifyInclusion(ctLeaves[index]!, index, size, proof.path, unhex(ctRoots[size]!)));
  }
});

test('small trees by hand: odd nodes are promoted, not duplicated', () => {
  const [a, b, c] = records(3).map(leafHash) as [Buffer, Buffer, Buffer];
  assert.equal(merkleRoot(records(1)), a);
  assert.equal(merkleRoot(records(2)), nodeHash(a, b));
  assert.equal(merkleRoot(records(3)), nodeHash(nodeHash(a, b), c));
  // Bitcoin-style duplication of c would give this root; ours must differ.
  assert.not.equal(merkleRoot(records(3)), nodeHash(nodeHash(a, b), nodeHash(c, c)));
  const proof = inclusionProof(records(3), 2);
  assert.equal(proof.path, [nodeHash(a, b)]);
  assert.equal(proof.sides, ['left']);
  assert.equal(inclusionProof(records(3), 0).sides, ['right', 'right']);
});

test('every leaf of every tree of 1..33 leaves verifies, and nowhere else', () => {
  for (let size = 1; size <= 33; size++) {
    const leaves = records(size);
    const tree = merkleTree(leaves);
    const root = merkleRoot(leaves);
    assert.equal(tree.root, root);
    for (let index = 0; index < size; index++) {
      const { path, sides } = tree.proof(index);
      assert.equal(inclusionProof(leaves, index).path, path);
      assert.is(sides.length, path.length);
      assert.ok(verifyInclusion(leaves[index]!, index, size, path, root), `leaf ${index} of ${size}`);
      // The sides agree with the index arithmetic: hashing by them reaches the root too.
      const byHand = path.reduce((running, node, i) => (sides[i] === 'left' ? nodeHash(node, running) : nodeHash(running, node)), leafHash(leaves[index]!));
      assert.equal(byHand, root);
      if (size > 1) {
        assert.not.ok(verifyInclusion(leaves[index]!, (index + 1) % size, size, path, root), `leaf ${index} of ${size} at another index`);
        assert.not.ok(verifyInclusion(leaves[(index + 1) % size]!, index, size, path, root), `another leaf at ${index} of ${size}`);
      }
    }
  }
});

test('a flipped bit anywhere fails', () => {
  const leaves = records(13);
  const root = merkleRoot(leaves);
  const { path } = inclusionProof(leaves, 6);
  const flip = (bytes: Buffer, bit: number) => {
    const copy = Buffer.from(bytes);
    copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  };
  assert.ok(verifyInclusion(leaves[6]!, 6, 13, path, root));
  assert.not.ok(verifyInclusion(flip(leaves[6]!, 3), 6, 13, path, root), 'leaf');
  assert.not.ok(verifyInclusion(leaves[6]!, 6, 13, path, flip(root, 255)), 'root');
  path.forEach((_, i) => {
    const bad = path.map((node, j) => (j === i ? flip(node, 17) : node));
    assert.not.ok(verifyInclusion(leaves[6]!, 6, 13, bad, root), `path[${i}]`);
  });
});

test('proofs of the wrong shape fail instead of throwing', () => {
  const leaves = records(6);
  const root = merkleRoot(leaves);
  const { path } = inclusionProof(leaves, 4);
  assert.not.ok(verifyInclusion(leaves[4]!, 4, 7, path, root), 'other size');
  assert.not.ok(verifyInclusion(leaves[4]!, 4, 6, path.slice(0, -1), root), 'short');
  assert.not.ok(verifyInclusion(leaves[4]!, 4, 6, [...path, path[0]!], root), 'long');
  assert.not.ok(verifyInclusion(leaves[4]!, 6, 6, path, root), 'index = size');
  assert.not.ok(verifyInclusion(leaves[4]!, -1, 6, path, root), 'negative index');
  assert.not.ok(verifyInclusion(leaves[4]!, 4, 6, path, root.subarray(0, 31)), 'short root');
  assert.throws(() => inclusionProof(leaves, 6), /outside a tree of 6/);
  assert.throws(() => inclusionProof([], 0), /positive integer/);
  assert.throws(() => merkleTree([]).proof(0), /empty tree/);
});

test('encodedProof is encodeProof(proof) for every leaf of trees of every shape, and decodes to a proof that verifies', () => {
  for (const size of [1, 2, 3, 5, 8, 13, 64, 100]) {
    const leaves = Array.from({ length: size }, (_, i) => Buffer.from(`record ${i} of ${size}`));
    const tree = merkleTree(leaves);
    for (let index = 0; index < size; index++) {
      const text = tree.encodedProof(index);
      assert.is(text, encodeProof(tree.proof(index)));
      const decoded = decodeProof(text)!;
      assert.ok(verifyInclusion(leaves[index]!, decoded.index, decoded.size, decoded.path, tree.root), `${index}/${size}`);
    }
  }
  assert.is(decodeProof('1/2:zz'), undefined);
});

test.run();
