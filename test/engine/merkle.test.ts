// Batch evidence proofs: our Merkle roots and audit paths match RFC 6962 and Certificate Transparency's published vectors,
// proofs round trip through their text form, tampering fails, and the bundle's check.py (python3) agrees with us.
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evidenceRow, type EvidenceRecord } from '../../engine/evidence.ts';
import { decodeProof, encodeProof, inclusionProof, leafHash, merkleRoot, merkleTree, nodeHash, verifyInclusion } from '../../engine/trust/index.ts';
import { blockLines } from '../../pipelines/archive.ts';

const hex = (bytes: Buffer) => bytes.toString('hex');
const unhex = (text: string) => Buffer.from(text, 'hex');

// The leaves and tree heads published with Certificate Transparency's reference implementation (RFC 6962 test data).
const ctLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
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

/** Leaves as the archive gives them: 32-byte record hashes, as hex. */
const records = (n: number, salt = '') => Array.from({ length: n }, (_, i) => hash('sha256', `evidence record ${i}${salt}`, 'hex'));

const flip = (bytes: Buffer, bit: number) => {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

test('tree heads match RFC 6962 for every size 0..8', () => {
  for (let size = 0; size <= ctLeaves.length; size++) assert.is(hex(merkleRoot(ctLeaves.slice(0, size))), ctRoots[size], `size ${size}`);
});

test('audit paths match the published ones and verify', () => {
  for (const [index, size, path] of ctPaths) {
    const proof = inclusionProof(ctLeaves.slice(0, size), index);
    assert.equal(proof.path.map(hex), path, `leaf ${index} of ${size}`);
    assert.ok(verifyInclusion(unhex(ctLeaves[index]!), index, size, proof.path, unhex(ctRoots[size]!)));
  }
});

test('small trees by hand: odd nodes are promoted, not duplicated', () => {
  const [a, b, c] = records(3).map((leaf) => leafHash(unhex(leaf))) as [Buffer, Buffer, Buffer];
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
      const leaf = unhex(leaves[index]!);
      const { path, sides } = tree.proof(index);
      assert.equal(inclusionProof(leaves, index).path, path);
      assert.is(sides.length, path.length);
      assert.ok(verifyInclusion(leaf, index, size, path, root), `leaf ${index} of ${size}`);
      // The sides agree with the index arithmetic: hashing by them reaches the root too.
      const byHand = path.reduce((running, node, i) => (sides[i] === 'left' ? nodeHash(node, running) : nodeHash(running, node)), leafHash(leaf));
      assert.equal(byHand, root);
      if (size > 1) {
        assert.not.ok(verifyInclusion(leaf, (index + 1) % size, size, path, root), `leaf ${index} of ${size} at another index`);
        assert.not.ok(verifyInclusion(unhex(leaves[(index + 1) % size]!), index, size, path, root), `another leaf at ${index} of ${size}`);
      }
    }
  }
});

test('a flipped bit anywhere fails', () => {
  const leaves = records(13);
  const root = merkleRoot(leaves);
  const { path } = inclusionProof(leaves, 6);
  const leaf = unhex(leaves[6]!);
  assert.ok(verifyInclusion(leaf, 6, 13, path, root));
  assert.not.ok(verifyInclusion(flip(leaf, 3), 6, 13, path, root), 'leaf');
  assert.not.ok(verifyInclusion(leaf, 6, 13, path, flip(root, 255)), 'root');
  path.forEach((_, i) => {
    const bad = path.map((node, j) => (j === i ? flip(node, 17) : node));
    assert.not.ok(verifyInclusion(leaf, 6, 13, bad, root), `path[${i}]`);
  });
});

test('proofs of the wrong shape fail instead of throwing; leaves that are not hex are refused', () => {
  const leaves = records(6);
  const root = merkleRoot(leaves);
  const { path } = inclusionProof(leaves, 4);
  const leaf = unhex(leaves[4]!);
  assert.not.ok(verifyInclusion(leaf, 4, 7, path, root), 'other size');
  assert.not.ok(verifyInclusion(leaf, 4, 6, path.slice(0, -1), root), 'short');
  assert.not.ok(verifyInclusion(leaf, 4, 6, [...path, path[0]!], root), 'long');
  assert.not.ok(verifyInclusion(leaf, 6, 6, path, root), 'index = size');
  assert.not.ok(verifyInclusion(leaf, -1, 6, path, root), 'negative index');
  assert.not.ok(verifyInclusion(leaf, 4, 6, path, root.subarray(0, 31)), 'short root');
  assert.throws(() => inclusionProof(leaves, 6), /outside a tree of 6/);
  assert.throws(() => inclusionProof([], 0), /positive integer/);
  assert.throws(() => merkleTree([]).proof(0), /empty tree/);
  for (const bad of [`${leaves[0]!.slice(0, 63)}g`, 'abc', 'zz', `${leaves[0]!} `]) {
    assert.throws(() => merkleTree([leaves[1]!, bad]), (error: Error & { code?: string }) => error.code === 'SWX_BAD_REQUEST', JSON.stringify(bad));
  }
});

test('encodedProofs is encodeProof(proof) for every leaf of trees of every shape, and decodes to a proof that verifies', () => {
  for (const size of [1, 2, 3, 5, 8, 13, 64, 100, 257]) {
    const leaves = records(size, ` of ${size}`);
    const tree = merkleTree(leaves);
    const texts = tree.encodedProofs();
    assert.is(texts.length, size);
    texts.forEach((text, index) => {
      const proof = tree.proof(index);
      assert.is(text, encodeProof(proof));
      assert.is(text.length, `${index}/${size}:`.length + 43 * proof.path.length, 'a node is 43 characters');
      const decoded = decodeProof(text)!;
      assert.equal(decoded, { index, size, path: proof.path });
      assert.ok(verifyInclusion(unhex(leaves[index]!), decoded.index, decoded.size, decoded.path, tree.root), `${index}/${size}`);
    });
  }
  assert.equal(merkleTree([]).encodedProofs(), []);
});

test('proof texts: tampering fails, non-canonical base64url and junk are refused, the earlier hex form still reads', () => {
  const leaves = records(11);
  const tree = merkleTree(leaves);
  const leaf = unhex(leaves[9]!);
  const text = tree.encodedProofs()[9]!;
  const verifies = (candidate: string, root = tree.root) => {
    const proof = decodeProof(candidate);
    return Boolean(proof && verifyInclusion(leaf, proof.index, proof.size, proof.path, root));
  };
  assert.ok(verifies(text));
  const nodes = text.slice(text.indexOf(':') + 1);
  // Any other character anywhere in the nodes: either not a proof, or one that does not reach the root.
  for (let at = 0; at < nodes.length; at++) {
    const other = nodes[at] === 'A' ? 'B' : 'A';
    assert.not.ok(verifies(`9/11:${nodes.slice(0, at)}${other}${nodes.slice(at + 1)}`), `character ${at}`);
  }
  assert.not.ok(verifies(text, flip(tree.root, 0)), 'another root');
  assert.not.ok(verifies(`8/11:${nodes}`), 'another index');
  assert.not.ok(verifies(`9/16:${nodes}`), 'a size of another shape');
  // The root alone does not fix the size (RFC 9162): here 9/12 hashes exactly as 9/11, so checkers compare the size
  // with the block's record count.
  assert.ok(verifies(`9/12:${nodes}`));
  // The last character of a node carries 2 bits that must be zero: 'B' decodes like 'A' but is not the canonical text.
  const lastOfFirst = nodes[42]!;
  const sloppy = String.fromCharCode(lastOfFirst.charCodeAt(0) + 1);
  assert.is(Buffer.from(`${nodes.slice(0, 42)}${sloppy}`, 'base64url').equals(Buffer.from(nodes.slice(0, 43), 'base64url')), true);
  assert.is(decodeProof(`9/11:${nodes.slice(0, 42)}${sloppy}${nodes.slice(43)}`), undefined);
  for (const junk of ['', '9/11', `9/11:${nodes}=`, `9/11:${nodes.slice(1)}`, `9/11:${nodes} `, ` 9/11:${nodes}`, `9/11:${nodes.replace(/[A-Za-z]/, '+')}`, '١/2:', '1/2:zz', `1/2:${'a'.repeat(64)},`]) {
    assert.is(decodeProof(junk), undefined, JSON.stringify(junk));
  }
  // Evidence archived before base64url kept `index/size:hex,hex,…`: the same audit path, still checkable.
  const { path } = tree.proof(9);
  const earlier = `9/11:${path.map(hex).join(',')}`;
  assert.equal(decodeProof(earlier), { index: 9, size: 11, path });
  assert.ok(verifies(earlier));
});

test('the archive block: each row line carries its block and a proof of its record hash into the root', () => {
  const record = (i: number): EvidenceRecord => ({
    id: `msg:${i}:routed`, messageId: `m-${i}`, conversationId: 'c', stage: 'routed', at: '2026-11-27T10:00:00.000Z',
    from: 'CUSTOMS', to: 'BOFT', service: 'declare', action: 'submit', protocol: 'rest', detail: 'quote " and \\ backslash', node: 'hub "1"',
  });
  let prev = '';
  const rows = Array.from({ length: 7 }, (_, i) => {
    const { row, hash: recordHash } = evidenceRow(record(i), 'EVIDENCE@1', i, i, prev);
    prev = recordHash;
    return row;
  });
  const { lines, root } = blockLines(rows.map((row) => JSON.stringify(row)), rows.map((row) => row.record_hash), 'hub "1":0');
  assert.throws(() => blockLines(['{"a":1}'], [], 'b'), /1 rows has 0 record hashes/);
  assert.equal(root, merkleRoot(rows.map((row) => row.record_hash)));
  lines.forEach((line, index) => {
    const stored = JSON.parse(line) as typeof rows[number] & { batch_id: string; proof: string };
    assert.equal({ ...stored, batch_id: undefined, proof: undefined }, { ...rows[index]!, batch_id: undefined, proof: undefined });
    assert.is(stored.batch_id, 'hub "1":0');
    const proof = decodeProof(stored.proof)!;
    assert.is(proof.index, index);
    assert.ok(verifyInclusion(unhex(stored.record_hash), proof.index, proof.size, proof.path, root));
  });
});

test("the bundle's check.py (python3, standard library) gives our verdict on good, tampered and earlier-form proofs", () => {
  const cases: { leaf: string; proof: string; root: string; expected: boolean }[] = [];
  for (const size of [1, 2, 3, 6, 7, 16, 33]) {
    const leaves = records(size, `/${size}`);
    const tree = merkleTree(leaves);
    const root = hex(tree.root);
    tree.encodedProofs().forEach((proof, index) => {
      const leaf = leaves[index]!;
      const nodes = proof.slice(proof.indexOf(':') + 1);
      cases.push({ leaf, proof, root, expected: true });
      cases.push({ leaf: hex(flip(unhex(leaf), index)), proof, root, expected: false });
      cases.push({ leaf, proof, root: hex(flip(tree.root, 7)), expected: false });
      if (nodes) cases.push({ leaf, proof: `${index}/${size}:${nodes.slice(0, 5)}${nodes[5] === 'Q' ? 'R' : 'Q'}${nodes.slice(6)}`, root, expected: false });
      cases.push({ leaf, proof: `${index}/${size}:${tree.proof(index).path.map(hex).join(',')}`, root, expected: true });
      cases.push({ leaf, proof: `${index}/${2 * size + 1}:${nodes}`, root, expected: false });
    });
  }
  cases.push({ leaf: records(1)[0]!, proof: 'not a proof', root: hex(merkleRoot(records(1))), expected: false });
  for (const c of cases) {
    const proof = decodeProof(c.proof);
    assert.is(Boolean(proof && verifyInclusion(unhex(c.leaf), proof.index, proof.size, proof.path, unhex(c.root))), c.expected, c.proof);
  }
  const checker = fileURLToPath(new URL('../../engine/evidence-check.py', import.meta.url));
  const script = [
    'import importlib.util, json, sys',
    `spec = importlib.util.spec_from_file_location('check', ${JSON.stringify(checker)})`,
    'check = importlib.util.module_from_spec(spec); spec.loader.exec_module(check)',
    "print(json.dumps([check.included(bytes.fromhex(c['leaf']), c['proof'], bytes.fromhex(c['root'])) for c in json.load(sys.stdin)]))",
  ].join('\n');
  const run = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout) as boolean[], cases.map((c) => c.expected));
});

test.run();
