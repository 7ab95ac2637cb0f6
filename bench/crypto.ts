// crypto bench: the signature work per core, swx's paths next to the naive library paths (bench/naive/, the libraries
// used as their documentation shows) and the node:crypto ceilings, all measured in the same run. Per-core rates are
// operations per CPU-second of this process (worker threads included), so a busy machine does not flatter them.
// Rows: CMS verify / sign (inline and through the signature pool), RFC 3161 token creation and verification, the
// CPU per record and share of one core that time-stamping evidence takes at 2,000 records/s (a Merkle tree per archive
// block, one token per stamp interval over the block roots, a proof per record), and XMLDSig verify / sign of a 4 KB
// SOAP envelope.
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID, sign, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { evidenceRow, type EvidenceRecord } from '../engine/evidence.ts';
import { initPki } from '../engine/pki/index.ts';
import {
  createSignaturePool,
  createTimeStampToken,
  merkleTree,
  signCms,
  signXml,
  timeStampTokenOf,
  toArrayBuffer,
  verifyCms,
  verifyTimeStampResponse,
  verifyTimeStampToken,
  verifyXmlReference,
  type TsaCredential,
} from '../engine/trust/index.ts';
import { verifyXmlFast } from '../engine/trust/xmldsig-fast.ts';
import { blockLines } from '../pipelines/archive.ts';
import { swxTsaPolicy } from '../pipelines/stamp.ts';
import { conditions, percentile } from './conditions.ts';
import { naiveSignCms, naiveSigner, naiveVerifyCms } from './naive/cms.ts';
import { naiveTimeStamp, naiveVerifyTimeStamp } from './naive/tsa.ts';
import { naiveSignXml, naiveVerifyXml } from './naive/xml.ts';

export interface CryptoOptions { json: boolean; seconds: number }

export interface Row {
  name: string;
  path: 'ceiling' | 'naive' | 'swx' | 'swx pool';
  /** Operations per CPU-second of this process. */
  per_core_per_s: number;
  wall_per_s: number;
  cpu_us_per_op: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  ops: number;
  note?: string;
}

const round = (value: number, digits = 0) => Number(value.toFixed(digits));
const cpuMicros = () => { const { user, system } = process.cpuUsage(); return user + system; };

/** Runs `op` (one at a time, or `concurrency` at once) for `seconds` after a short warm-up. */
async function measure(name: string, path: Row['path'], op: () => unknown, seconds: number, concurrency = 1): Promise<Row> {
  const warmUntil = performance.now() + Math.min(1500, Math.max(1000, seconds * 500));
  while (performance.now() < warmUntil) await Promise.all(Array.from({ length: concurrency }, op));
  const latencies: number[] = [];
  const timed = async () => { const started = performance.now(); await op(); latencies.push(performance.now() - started); };
  const cpuStart = cpuMicros();
  const start = performance.now();
  const until = start + seconds * 1000;
  while (performance.now() < until) await Promise.all(Array.from({ length: concurrency }, timed));
  const wallMs = performance.now() - start;
  const cpu = cpuMicros() - cpuStart;
  latencies.sort((a, b) => a - b);
  return {
    name,
    path,
    per_core_per_s: round(latencies.length / (cpu / 1e6)),
    wall_per_s: round(latencies.length / (wallMs / 1000)),
    cpu_us_per_op: round(cpu / latencies.length, 1),
    p50_ms: round(percentile(latencies, 50), 3),
    p95_ms: round(percentile(latencies, 95), 3),
    p99_ms: round(percentile(latencies, 99), 3),
    ops: latencies.length,
  };
}

/** A 4 KB SOAP 1.2 envelope, as AS4 and WS-Security traffic carries it. */
function soapEnvelope(): string {
  const items = Array.from({ length: 40 }, (_, i) => `<dec:Item line="${i + 1}"><dec:Goods>HS 8471.30 portable computer</dec:Goods><dec:Qty>${i + 3}</dec:Qty></dec:Item>`).join('');
  return `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header/><soap:Body><dec:Declaration xmlns:dec="urn:swx:bench:declaration" id="D-1">${items}</dec:Declaration></soap:Body></soap:Envelope>`;
}

/** Evidence records per second that the time-stamping cost is quoted at (target: under 1 % of one core). */
const stampRate = 2000;

/** CPU µs per call of a synchronous `op`, called for `ms` milliseconds. */
function cpuPerCall(op: () => unknown, ms: number): number {
  let calls = 0;
  const cpuStart = cpuMicros();
  const until = performance.now() + ms;
  do { op(); calls++; } while (performance.now() < until);
  return (cpuMicros() - cpuStart) / calls;
}

/**
 * The CPU that time-stamping evidence takes per record at 2,000 records/s, in rounds (min / median / max over them).
 * Counted, per archive block: blockLines (pipelines/archive.ts) — the Merkle tree over the records' hashes, every
 * record's proof text, and appending block id and proof to each row's JSON; per stamp interval: what the stamper
 * computes (pipelines/stamp.ts) — the tree over the interval's block roots, their proofs, and the RFC 3161 token
 * made by the built-in TSA and checked. Not counted: the hash chain (record_hash exists whether or not anything is
 * stamped), each row's own JSON, and the inserts.
 */
export async function stampingCost(options: { seconds: number; tsa: TsaCredential; caPem: string; say: (line: string) => void }): Promise<Record<string, unknown>[]> {
  const { tsa, caPem, say } = options;
  const rounds = 5;
  const roundMs = Math.max(200, (options.seconds * 1000) / rounds);
  const scenarios = [
    { label: 'defaults: 100 ms blocks (200 records), a token a second', block: 200, intervalS: 1 },
    { label: 'full blocks (2,000 records), a token a second', block: 2000, intervalS: 1 },
    { label: '100 ms blocks (200 records), a token every 100 ms', block: 200, intervalS: 0.1 },
  ];
  say(`time-stamping evidence at ${stampRate.toLocaleString('en')} records/s: CPU µs per record and share of one core, min / median / max over ${rounds} rounds of ${roundMs} ms`);
  say('  counted: per block, the Merkle tree over the record hashes, each record\'s proof text and its block columns appended to');
  say('  the row JSON (blockLines); per interval, the tree over the block roots, their proofs, the RFC 3161 token made and checked');
  say('  not counted: the hash chain (record_hash exists anyway), the rows\' own JSON, the inserts');
  const entries: Record<string, unknown>[] = [];
  let serial = 1n;
  for (const { label, block, intervalS } of scenarios) {
    let prevHash = '';
    const rows: string[] = [];
    const hashes: string[] = [];
    for (let i = 0; i < block; i++) {
      const record: EvidenceRecord = {
        id: `msg:${i}:routed`, messageId: randomUUID(), conversationId: randomUUID(), stage: 'routed', at: new Date().toISOString(),
        from: 'CUSTOMS', to: 'BOFT', service: 'declaration', action: 'submit', protocol: 'rest', detail: `swx.msg.BOFT seq ${i}`, node: 'hub-1',
      };
      const { row, hash } = evidenceRow(record, 'EVIDENCE@bench', i, i, prevHash);
      prevHash = hash;
      rows.push(JSON.stringify(row));
      hashes.push(hash);
    }
    const blocksPerInterval = Math.max(1, Math.round((stampRate * intervalS) / block));
    const roots = Array.from({ length: blocksPerInterval }, () => randomBytes(32).toString('hex'));
    const interval = () => {
      const tree = merkleTree(roots);
      tree.encodedProofs();
      const imprint = createHash('sha256').update(tree.root).digest();
      const response = createTimeStampToken({ digest: imprint, hashAlgorithm: 'SHA-256', policy: swxTsaPolicy, tsa, serial: serial++ });
      if (!verifyTimeStampToken(timeStampTokenOf(response), { digest: imprint, trustedCertsPem: caPem }).genTime) throw new Error('bench token does not verify');
    };
    const ops = { tree: () => merkleTree(hashes), block: () => blockLines(rows, hashes, 'hub-1:0'), interval };
    for (const op of Object.values(ops)) cpuPerCall(op, 300);
    const perRecord = { tree: [] as number[], proofs: [] as number[], interval: [] as number[], total: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      const tree = cpuPerCall(ops.tree, roundMs / 3) / block;
      const blockWork = cpuPerCall(ops.block, roundMs / 3) / block;
      const stamp = cpuPerCall(ops.interval, roundMs / 3) / (stampRate * intervalS);
      perRecord.tree.push(tree);
      perRecord.proofs.push(Math.max(0, blockWork - tree));
      perRecord.interval.push(stamp);
      perRecord.total.push(blockWork + stamp);
    }
    const spread = (values: number[], scale = 1, digits = 2) => {
      const sorted = values.map((value) => value * scale).sort((a, b) => a - b);
      return { min: round(sorted[0]!, digits), median: round(sorted[Math.floor(sorted.length / 2)]!, digits), max: round(sorted.at(-1)!, digits) };
    };
    const percent = spread(perRecord.total, (stampRate / 1e6) * 100, 3);
    const us = { tree: spread(perRecord.tree), proofs_and_columns: spread(perRecord.proofs), stamp_interval: spread(perRecord.interval), total: spread(perRecord.total) };
    entries.push({ scenario: label, block_records: block, interval_s: intervalS, tokens_per_s: round(1 / intervalS, 2), us_per_record: us, percent_of_one_core: percent });
    say(`swx      ${label}: tree ${us.tree.median} + proofs ${us.proofs_and_columns.median} + stamp ${us.stamp_interval.median} = ${us.total.median} µs/record (${us.total.min}–${us.total.max}), ${percent.median} % of one core (${percent.min}–${percent.max} %)`);
  }
  return entries;
}

export async function cryptoBench(options: CryptoOptions): Promise<Record<string, unknown>> {
  const say = (line: string) => { if (!options.json) console.log(line); };
  const seconds = options.seconds;
  const dir = mkdtempSync(join(tmpdir(), 'swx-bench-crypto-'));
  const rows: Row[] = [];
  const stamping: Record<string, unknown>[] = [];
  const add = (row: Row) => {
    rows.push(row);
    say(`${row.path.padEnd(8)} ${row.name.padEnd(58)} ${String(row.per_core_per_s).padStart(7)}/s per core  ${String(row.cpu_us_per_op).padStart(8)} µs CPU/op  p50 ${row.p50_ms} ms  p99 ${row.p99_ms} ms${row.note ? `  (${row.note})` : ''}`);
  };
  try {
    await initPki(join(dir, 'ecdsa'), { agencies: ['CUSTOMS'] });
    await initPki(join(dir, 'rsa'), { agencies: ['BOFT'], alg: 'rsa' });
    const read = (path: string) => readFileSync(join(dir, path), 'utf8');
    const ec = { certPem: read('ecdsa/agencies/CUSTOMS/cert.pem'), keyPem: read('ecdsa/agencies/CUSTOMS/key.pem'), caPem: read('ecdsa/ca/cert.pem') };
    const rsa = { certPem: read('rsa/agencies/BOFT/cert.pem'), keyPem: read('rsa/agencies/BOFT/key.pem'), caPem: read('rsa/ca/cert.pem') };
    const tsa = { certPem: read('ecdsa/tsa/cert.pem'), keyPem: read('ecdsa/tsa/key.pem') };
    const payload = randomBytes(4096);

    say('ceilings: node:crypto with cached keys');
    const ecKey = createPrivateKey(ec.keyPem);
    const ecPublic = createPublicKey(ecKey);
    const rsaKey = createPrivateKey(rsa.keyPem);
    const rsaPublic = createPublicKey(rsaKey);
    const small = randomBytes(200);
    const ecSignature = sign('sha256', small, ecKey);
    const rsaSignature = sign('sha256', small, rsaKey);
    add(await measure('ECDSA P-256 verify', 'ceiling', () => verify('sha256', small, ecPublic, ecSignature), seconds));
    add(await measure('ECDSA P-256 sign', 'ceiling', () => sign('sha256', small, ecKey), seconds));
    add(await measure('RSA-2048 verify', 'ceiling', () => verify('sha256', small, rsaPublic, rsaSignature), seconds));

    say('CMS SignedData, 4 KB attached content, signer certificate and CA in the message, path to the CA checked');
    const ecMessage = await signCms({ data: payload, certPem: ec.certPem, keyPem: ec.keyPem, chainPem: ec.caPem });
    const rsaMessage = await signCms({ data: payload, certPem: rsa.certPem, keyPem: rsa.keyPem, chainPem: rsa.caPem });
    const ecTrust = { trustedCertsPem: [ec.caPem] };
    const samples: [Buffer, { trustedCertsPem: string[] }][] = [[ecMessage, ecTrust], [rsaMessage, { trustedCertsPem: [rsa.caPem] }]];
    for (const [message, trust] of samples) {
      const verdict = await verifyCms(message, trust);
      if (!verdict.valid) throw new Error(`bench message does not verify: ${verdict.code} ${verdict.detail}`);
      if (!(await naiveVerifyCms(message, trust.trustedCertsPem[0]!))) throw new Error('bench message does not verify with pkijs');
    }
    add(await measure('CMS verify ECDSA P-256: pkijs SignedData.verify', 'naive', () => naiveVerifyCms(ecMessage, ec.caPem), seconds));
    add(await measure('CMS verify ECDSA P-256: verifyCms', 'swx', () => verifyCms(ecMessage, ecTrust), seconds));
    add(await measure('CMS verify RSA-2048: pkijs SignedData.verify', 'naive', () => naiveVerifyCms(rsaMessage, rsa.caPem), seconds));
    add(await measure('CMS verify RSA-2048: verifyCms', 'swx', () => verifyCms(rsaMessage, { trustedCertsPem: [rsa.caPem] }), seconds));
    const threads = availableParallelism();
    const pool = createSignaturePool({ threads });
    try {
      const row = await measure(`CMS verify ECDSA P-256: signature pool, ${threads} workers, 256 at once`, 'swx pool', () => pool.verifyCms(ecMessage, ecTrust), seconds, 256);
      add({ ...row, note: `${row.wall_per_s}/s in all; latency is per call within a wave of 256` });
    } finally {
      await pool.close();
    }
    const naiveEc = await naiveSigner(ec.certPem, ec.keyPem);
    add(await measure('CMS sign ECDSA P-256: pkijs SignedData.sign', 'naive', () => naiveSignCms(payload, naiveEc), seconds));
    add(await measure('CMS sign ECDSA P-256: signCms', 'swx', () => signCms({ data: payload, certPem: ec.certPem, keyPem: ec.keyPem }), seconds));

    say('RFC 3161: the built-in TSA (ECDSA P-256) and token verification against the CA');
    const naiveTsa = await naiveSigner(tsa.certPem, tsa.keyPem);
    const caCert = pkijs.Certificate.fromBER(toArrayBuffer(new X509Certificate(ec.caPem).raw));
    let serial = 1;
    const digest = createHash('sha256').update(payload).digest();
    add(await measure('token creation: pkijs TSTInfo + SignedData.sign', 'naive', () => naiveTimeStamp(digest, serial++, naiveTsa), seconds));
    add(await measure('token creation: createTimeStampToken', 'swx', () => createTimeStampToken({ digest, policy: '1.3.6.1.4.1.61000.3161.1', tsa, serial: BigInt(serial++) }), seconds));
    const response = createTimeStampToken({ digest, policy: '1.3.6.1.4.1.61000.3161.1', tsa, serial: 1n });
    if (!verifyTimeStampResponse(response, { data: payload, trustedCertsPem: ec.caPem }).valid) throw new Error('bench token does not verify');
    const naiveResponse = await naiveTimeStamp(digest, 1, naiveTsa);
    if (!(await naiveVerifyTimeStamp(naiveResponse, payload, caCert))) throw new Error('bench token does not verify with pkijs');
    add(await measure('token verify: pkijs TimeStampResp.verify', 'naive', () => naiveVerifyTimeStamp(naiveResponse, payload, caCert), seconds));
    add(await measure('token verify: verifyTimeStampResponse', 'swx', () => verifyTimeStampResponse(response, { data: payload, trustedCertsPem: ec.caPem }), seconds));

    stamping.push(...(await stampingCost({ seconds, tsa, caPem: ec.caPem, say })));
    {
      // The naive token (pkijs), made and checked once a second, for comparison with the swx token above.
      const imprint = createHash('sha256').update(payload).digest();
      const token = (await measure('stamp interval: pkijs token made and checked', 'naive', async () => naiveVerifyTimeStamp(await naiveTimeStamp(imprint, serial++, naiveTsa), payload, caCert), Math.max(0.5, seconds / 3))).cpu_us_per_op;
      const percent = round((token / 1e6) * 100, 3);
      stamping.push({ scenario: 'pkijs token, one a second', tokens_per_s: 1, us_per_record: round(token / stampRate, 3), percent_of_one_core: percent });
      say(`naive    pkijs token made and checked once a second: ${round(token / stampRate, 2)} µs/record, ${percent} % of one core`);
    }

    say('XMLDSig: a 4 KB SOAP 1.2 envelope signed by signXml (RSA-SHA256, exc-c14n, URI="", the Signature in the SOAP');
    say('Header, the certificate in KeyInfo); xml-crypto has no ECDSA, so RSA for all three');
    const envelope = soapEnvelope();
    const signed = await signXml(envelope, { keyPem: rsa.keyPem, certPem: rsa.certPem });
    const xmlTrust = { trustedCertsPem: rsa.caPem };
    if (!naiveVerifyXml(signed, rsa.certPem)) throw new Error('bench envelope does not verify with xml-crypto');
    const reference = await verifyXmlReference(signed, xmlTrust);
    if (!reference.valid) throw new Error(`bench envelope does not verify with verifyXmlReference: ${reference.code} ${reference.detail}`);
    add({ ...(await measure('XML verify: xml-crypto checkSignature', 'naive', () => naiveVerifyXml(signed, rsa.certPem), seconds)), note: `${Buffer.byteLength(signed)} bytes signed` });
    add(await measure('XML verify: verifyXmlReference (engine/trust/xmldsig.ts)', 'swx', () => verifyXmlReference(signed, xmlTrust), seconds));
    const fast = verifyXmlFast(signed, xmlTrust);
    if (fast?.valid) add(await measure('XML verify: verifyXmlFast (engine/trust/xmldsig-fast.ts)', 'swx', () => verifyXmlFast(signed, xmlTrust), seconds));
    else say(`         verifyXmlFast gives ${fast ? `${fast.code} ${fast.detail}` : 'no verdict (not covered)'} for this envelope: not measured`);
    add(await measure('XML sign: xml-crypto computeSignature', 'naive', () => naiveSignXml(envelope, rsa.keyPem, rsa.certPem), seconds));
    add(await measure('XML sign: signXml (engine/trust/xmldsig.ts)', 'swx', () => signXml(envelope, { keyPem: rsa.keyPem, certPem: rsa.certPem }), seconds));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const headline = rows.find((row) => row.name === 'CMS verify ECDSA P-256: verifyCms')!;
  const ratio = (swx: string, naive: string) => {
    const a = rows.find((row) => row.name === swx);
    const b = rows.find((row) => row.name === naive);
    return a && b ? round(a.per_core_per_s / b.per_core_per_s, 1) : null;
  };
  const speedups = {
    cms_verify_ecdsa: ratio('CMS verify ECDSA P-256: verifyCms', 'CMS verify ECDSA P-256: pkijs SignedData.verify'),
    cms_sign_ecdsa: ratio('CMS sign ECDSA P-256: signCms', 'CMS sign ECDSA P-256: pkijs SignedData.sign'),
    token_creation: ratio('token creation: createTimeStampToken', 'token creation: pkijs TSTInfo + SignedData.sign'),
    token_verify: ratio('token verify: verifyTimeStampResponse', 'token verify: pkijs TimeStampResp.verify'),
    xml_verify_reference: ratio('XML verify: verifyXmlReference (engine/trust/xmldsig.ts)', 'XML verify: xml-crypto checkSignature'),
    xml_verify_fast: ratio('XML verify: verifyXmlFast (engine/trust/xmldsig-fast.ts)', 'XML verify: xml-crypto checkSignature'),
    xml_sign: ratio('XML sign: signXml (engine/trust/xmldsig.ts)', 'XML sign: xml-crypto computeSignature'),
  };
  say(`speed-ups over the naive path (per core): ${JSON.stringify(speedups)}`);
  return {
    bench: 'crypto',
    // The README's common fields, for the headline row: CMS verify (ECDSA P-256, 4 KB, path checked) on swx's path.
    msgs_per_s: headline.per_core_per_s,
    p50_ms: headline.p50_ms,
    p95_ms: headline.p95_ms,
    p99_ms: headline.p99_ms,
    cpu_ms_per_msg: round(headline.cpu_us_per_op / 1000, 3),
    rows,
    stamping_at_2000_msgs_per_s: stamping,
    speedups,
    conditions: conditions({
      seconds_per_row: seconds,
      per_core: 'operations per CPU-second of the bench process, worker threads included',
      keys: 'ECDSA P-256 and RSA-2048 from `swx pki init`; cached KeyObjects on every path',
    }),
  };
}
