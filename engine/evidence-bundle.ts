// Evidence bundles: everything that proves what happened to one message, in a tar archive an auditor can check years
// later with stock tools (openssl, python3, sha256sum; VERIFY.md lists the exact commands) or with `swx evidence
// verify`. Contents: the message bytes (and a payload package's signed parts on their own, for xmlsec1), every
// evidence record as stored, the records' Merkle proofs, the blocks' proofs into time-stamped roots with their RFC
// 3161 responses, the checked signatures with their signature bases and certificates (for ebMS 2.0 and AS4 the signed
// envelope as received, and the partner's signed receipt or Acknowledgment), and a manifest of SHA-256 sums signed by
// the hub (CMS, detached).
import { createPublicKey, hash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SignatureInfo } from './envelope.ts';
import { SwxError } from './errors.ts';
import { hashedColumns, recordHash, type HashedRow } from './evidence.ts';
import { isSigAlg, verifySignatureBase, type SigAlg } from './httpsig.ts';
import { openRaw, type Keyring } from './keyring.ts';
import type { Store } from './store/index.ts';
import { readTar, writeTar, type TarEntry } from './tar.ts';
import { buildPath, certificate, certificates, decodeProof, signCms, verifyCms, verifyInclusion, verifyTimeStampResponse, verifyXml } from './trust/index.ts';
import { readKeptPackage } from './mime/index.ts';
import { elementChildren, textOf } from './xml/elements.ts';
import { parseXml, type XmlElement } from './xml/parse.ts';

export interface BundleSigner {
  /** The hub's CA: it issued the hub's signing certificate and, in the demo PKI, the agencies'. */
  caPem: string;
  /** The anchors of the TSA's certificate (the hub CA for the built-in TSA) and the TSA's certificate chain. */
  tsaAnchorPem: string;
  tsaChainPem: string;
  hubSign: { certPem: string; keyPem: string; chainPem: string };
}

export interface BundleSources {
  store: Store;
  /** The payload bytes of a record whose raw bytes live in the Object Store (raw_ref). */
  payload(rawRef: string, sha256: string): Promise<Buffer>;
  signer: BundleSigner;
  /** Opens sealed raw bytes (engine/keyring.ts); the records keep them sealed, as their hashes cover. */
  keyring?: Keyring;
}

type StoredRecord = HashedRow & { record_hash: string; batch_id: string; proof: string };

interface BlockRow {
  block_id: string; root: string; stamp_id: string; stamp_root: string; stamp_proof: string; tsr: string; gen_time: string; tsa: string;
  first_chain: number; last_chain: number; records: number; stamp_file?: string;
}

const checker = readFileSync(new URL('./evidence-check.py', import.meta.url), 'utf8');
const sha256Hex = (bytes: Buffer | string) => hash('sha256', bytes, 'hex');

/** RFC 9421 signature values are raw (r || s for ECDSA); openssl dgst wants ECDSA signatures as DER. */
function ecdsaDer(raw: Buffer): Buffer {
  const integer = (half: Buffer) => {
    let bytes = half;
    while (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) bytes = bytes.subarray(1);
    if (bytes[0]! >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
    return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, raw.length / 2)), integer(raw.subarray(raw.length / 2))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function signatureBytes(info: SignatureInfo): Buffer | undefined {
  const match = /=:([A-Za-z0-9+/=]+):\s*$/.exec(info.value);
  return match ? Buffer.from(match[1]!, 'base64') : undefined;
}

/** The openssl command that checks a signature over its base, per RFC 9421 algorithm. */
function opensslCheck(alg: SigAlg, prefix: string): string {
  const files = `-verify ${prefix}-pubkey.pem -signature ${prefix}-signature`;
  switch (alg) {
    case 'ecdsa-p256-sha256': return `openssl dgst -sha256 ${files}.der ${prefix}-base.txt`;
    case 'ecdsa-p384-sha384': return `openssl dgst -sha384 ${files}.der ${prefix}-base.txt`;
    case 'rsa-v1_5-sha256': return `openssl dgst -sha256 ${files}.bin ${prefix}-base.txt`;
    case 'rsa-pss-sha512': return `openssl dgst -sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:64 ${files}.bin ${prefix}-base.txt`;
    case 'ed25519': return `openssl pkeyutl -verify -pubin -inkey ${prefix}-pubkey.pem -rawin -in ${prefix}-base.txt -sigfile ${prefix}-signature.bin`;
  }
}

function contentDigestCheck(base: string): string | undefined {
  const match = /^"content-digest"(?:;[^:]*)?: (sha-256|sha-512)=:/m.exec(base);
  if (!match) return undefined;
  return `openssl dgst -${match[1] === 'sha-512' ? 'sha512' : 'sha256'} -binary message.bin | base64   # equals the ${match[1]} value on the "content-digest" line of signatures/received-base.txt`;
}

const xmldsigNamespace = 'http://www.w3.org/2000/09/xmldsig#';
const soapNamespaces = ['http://www.w3.org/2003/05/soap-envelope', 'http://schemas.xmlsoap.org/soap/envelope/'];
/** The elements a WS-Security signature (AS4) references by wsu:Id, as xmlsec1 must be told of their Id attributes. */
const wsuIdElements = ['http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging', 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd:Timestamp'];

/** A signed XML document a record keeps (an ebMS 2.0 or AS4 message as received, the partner's receipt or Acknowledgment). */
interface SignedXml {
  xml: string;
  /** The MIME parts its signature references (cid:): the message's one payload or a part of its payload package, with its type where one is named. */
  parts: { contentId: string; contentType?: string; compressed: boolean }[];
  /** Signed by WS-Security, its elements referenced by wsu:Id (AS4), rather than whole (ebMS 2.0). */
  wsSecurity: boolean;
}

/** The signed XML of a record whose signature is XMLDSig: its signature base, or the receipt as received. */
function signedXmlOf(info: SignatureInfo, receipt: string | undefined): SignedXml | undefined {
  const xml = info.base ?? receipt;
  if (info.scheme !== 'xmldsig' || !xml || !xml.includes(xmldsigNamespace)) return undefined;
  let root;
  try {
    root = parseXml(xml).root;
  } catch {
    return undefined;
  }
  const parts: SignedXml['parts'] = [];
  const partInfo = new Map<string, XmlElement>();
  let wsSecurity = false;
  const visit = (element: XmlElement) => {
    if (element.localName === 'Security') wsSecurity = true;
    if (element.localName === 'PartInfo') {
      const href = element.attributes.find((a) => a.localName === 'href')?.value;
      if (href?.startsWith('cid:')) partInfo.set(href.slice(4), element);
    }
    // A signature's own references (a receipt copies the message's into its NonRepudiationInformation).
    if (element.namespace === xmldsigNamespace && element.localName === 'Reference' && element.parent?.localName === 'SignedInfo') {
      const uri = element.attributes.find((a) => a.localName === 'URI')?.value;
      if (uri?.startsWith('cid:')) parts.push({ contentId: decodeURIComponent(uri.slice(4)), compressed: false });
    }
    for (const child of elementChildren(element)) visit(child);
  };
  visit(root);
  for (const part of parts) {
    const properties = new Map<string, string>();
    const visitProperties = (element: XmlElement) => {
      if (element.localName === 'Property') properties.set(element.attributes.find((a) => a.localName === 'name')?.value ?? '', textOf(element));
      for (const child of elementChildren(element)) visitProperties(child);
    };
    const info = partInfo.get(part.contentId);
    if (info) visitProperties(info);
    const type = properties.get('MimeType');
    if (type) part.contentType = type;
    part.compressed = properties.has('CompressionType');
  }
  return { xml, parts, wsSecurity };
}

/**
 * The bytes of each part a signature references, by Content-ID: message.bin for a message's one payload; a payload
 * package's own parts (engine/mime/package.ts) where message.bin is one holding every part referenced.
 */
function signedPartBodies(signed: SignedXml, message: Buffer | undefined): Map<string, { body: Buffer; file: string; contentType?: string }> {
  const bodies = new Map<string, { body: Buffer; file: string; contentType?: string }>();
  if (!message || signed.parts.length === 0) return bodies;
  const packaged = signed.parts.length > 1 ? readKeptPackage(message) : undefined;
  for (const [index, part] of signed.parts.entries()) {
    const found = packaged?.find((candidate) => candidate.contentId === part.contentId);
    if (packaged && !found) return new Map();
    bodies.set(part.contentId, found ? { body: found.body, file: `parts/${index + 1}.bin`, contentType: found.contentType } : { body: message, file: 'message.bin' });
  }
  return bodies;
}

/** The xmlsec1 command that checks a signed XML document of the bundle with its signer's certificate, if xmlsec1 can. */
function xmlsecCheck(signed: SignedXml, prefix: string, files: ReadonlyMap<string, { file: string }>): string {
  const base = `xmlsec1 --verify --pubkey-cert-pem ${prefix}-cert.pem`;
  if (!signed.wsSecurity) return `${base} ${signed.parts.map((part) => `--url-map:cid:${part.contentId} ${files.get(part.contentId)?.file ?? 'message.bin'}`).join(' ')} ${prefix}-signed.xml`.replace(/ {2,}/g, ' ');
  if (signed.parts.length > 0) return `# ${prefix}-signed.xml references its payload through the SwA attachment transform, which xmlsec1 lacks: swx evidence verify checks it`;
  const soap = soapNamespaces.find((namespace) => signed.xml.includes(namespace)) ?? soapNamespaces[0];
  return `${base} ${[...wsuIdElements, `${soap}:Body`].map((element) => `--id-attr:Id ${element}`).join(' ')} ${prefix}-signed.xml`;
}

/**
 * Where a record's signature files go in a bundle: the sender's under `received`, each receiver's receipt under
 * `delivered-<RECEIVER>`, since a topic's or channel's message has one per receiver.
 */
const signaturePrefix = (record: { stage: unknown; to_partner?: unknown }) => (record.stage === 'delivered'
  ? `signatures/delivered-${String(record.to_partner).replace(/[^A-Za-z0-9._-]/g, '_')}` : `signatures/${String(record.stage)}`);
const folderName = (messageId: string) => `swx-evidence-${messageId.replace(/[^A-Za-z0-9._-]/g, '_')}`.slice(0, 60);

/** Builds the bundle of one message id (every record that names it); SWX_NOT_FOUND when there is none. */
export async function exportBundle(messageId: string, sources: BundleSources): Promise<{ name: string; tar: Buffer }> {
  const { store, signer } = sources;
  const records = await store.query<StoredRecord>(
    `SELECT ${hashedColumns.map((column) => column === 'at' ? 'toString(at) AS at' : column).join(', ')}, record_hash, batch_id, proof
     FROM evidence FINAL WHERE message_id = {messageId:String} ORDER BY node, chain`, { messageId });
  if (records.length === 0) throw new SwxError('SWX_NOT_FOUND', `no evidence names message ${messageId}`);
  const blocks = await store.query<BlockRow>(
    `SELECT block_id, root, stamp_id, stamp_root, stamp_proof, tsr, toString(gen_time) AS gen_time, tsa, first_chain, last_chain, records
     FROM evidence_batches FINAL WHERE block_id IN {ids:Array(String)}`, { ids: [...new Set(records.map((r) => r.batch_id))] });

  const files: TarEntry[] = [];
  const add = (path: string, data: Buffer | string) => files.push({ path, data: Buffer.from(data) });
  const steps: string[] = [];

  const stampFiles = new Map<string, string>();
  for (const block of blocks) {
    let file = stampFiles.get(block.stamp_id);
    if (!file) {
      file = `stamps/${stampFiles.size + 1}`;
      stampFiles.set(block.stamp_id, file);
      add(`${file}.tsr`, Buffer.from(block.tsr, 'base64'));
      add(`${file}.root`, Buffer.from(block.stamp_root, 'hex'));
      steps.push(`openssl ts -verify -in ${file}.tsr -data ${file}.root -CAfile certs/tsa-ca.pem -untrusted certs/tsa.pem   # time-stamped at ${block.gen_time} UTC by ${block.tsa}`);
    }
    block.stamp_file = file;
  }
  const unstamped = [...new Set(records.map((r) => r.batch_id))].filter((id) => !blocks.some((b) => b.block_id === id));
  add('records.jsonl', records.map((record) => JSON.stringify(record)).join('\n') + '\n');
  add('blocks.jsonl', blocks.map(({ tsr: _tsr, ...block }) => JSON.stringify(block)).join('\n') + (blocks.length ? '\n' : ''));

  const received = records.find((r) => r.stage === 'received' && r.sha256);
  if (received) {
    const bytes = received.raw ? Buffer.from(openRaw(sources.keyring, String(received.raw), String(received.id)), 'base64') : received.raw_ref ? await sources.payload(String(received.raw_ref), String(received.sha256)) : undefined;
    if (bytes) add('message.bin', bytes);
  }

  const signatureSteps: string[] = [];
  for (const record of records) {
    if (!record.signature || (record.stage !== 'received' && record.stage !== 'delivered')) continue;
    const info = JSON.parse(String(record.signature)) as SignatureInfo;
    const bytes = signatureBytes(info);
    if (!info.base || !info.certificate || !bytes || !isSigAlg(info.algorithm)) continue;
    const prefix = signaturePrefix(record);
    if (files.some((file) => file.path === `${prefix}-base.txt`)) continue;
    add(`${prefix}-base.txt`, info.base);
    add(`${prefix}-signature.bin`, bytes);
    if (info.algorithm.startsWith('ecdsa')) add(`${prefix}-signature.der`, ecdsaDer(bytes));
    add(`${prefix}-cert.pem`, info.certificate);
    add(`${prefix}-pubkey.pem`, createPublicKey(info.certificate).export({ type: 'spki', format: 'pem' }).toString());
    const who = record.stage === 'received' ? `the sender ${record.from_partner}` : `the receiver ${record.to_partner} (its receipt)`;
    signatureSteps.push(`# signed by ${who} at ${info.createdAt ?? 'an unrecorded time'} with ${info.algorithm}`);
    signatureSteps.push(opensslCheck(info.algorithm, prefix));
    signatureSteps.push(`openssl verify -CAfile certs/ca.pem -attime ${Math.floor(Date.parse(info.createdAt ?? record.at as string) / 1000)} ${prefix}-cert.pem`);
    if (record.stage === 'received') {
      const digest = contentDigestCheck(info.base);
      if (digest) signatureSteps.push(digest);
    }
  }

  const xmlSteps: string[] = [];
  for (const record of records) {
    if (!record.signature || (record.stage !== 'received' && record.stage !== 'delivered')) continue;
    const info = JSON.parse(String(record.signature)) as SignatureInfo;
    const receipt = record.stage === 'delivered' && record.raw ? Buffer.from(openRaw(sources.keyring, String(record.raw), String(record.id)), 'base64').toString('utf8') : undefined;
    const signed = signedXmlOf(info, receipt);
    const prefix = signaturePrefix(record);
    if (!signed || !info.certificate || files.some((file) => file.path === `${prefix}-signed.xml`)) continue;
    add(`${prefix}-signed.xml`, signed.xml);
    add(`${prefix}-cert.pem`, info.certificate);
    const what = record.stage === 'received' ? `the message as ${record.from_partner} signed it` : `the receipt ${record.to_partner} signed`;
    xmlSteps.push(`# ${what}, with ${info.algorithm}`);
    if (signed.parts.some((part) => part.compressed)) {
      xmlSteps.push(`# not checkable from this bundle: its payload was signed gzip-compressed, and message.bin holds it inflated`);
      continue;
    }
    const bodies = record.stage === 'received' ? signedPartBodies(signed, files.find((file) => file.path === 'message.bin')?.data) : new Map();
    for (const { body, file } of bodies.values()) if (file !== 'message.bin' && !files.some((kept) => kept.path === file)) add(file, body);
    xmlSteps.push(xmlsecCheck(signed, prefix, bodies));
    xmlSteps.push(`openssl verify -CAfile certs/ca.pem -attime ${Math.floor(Date.parse(info.createdAt ?? `${String(record.at).replace(' ', 'T')}Z`) / 1000)} ${prefix}-cert.pem`);
  }

  add('certs/ca.pem', signer.caPem);
  add('certs/tsa.pem', signer.tsaChainPem);
  add('certs/tsa-ca.pem', signer.tsaAnchorPem);
  add('certs/hub-sign.pem', signer.hubSign.chainPem);
  add('check.py', checker);
  const xmlStep = files.some((file) => file.path === 'message.bin' && /^\s*</.test(file.data.subarray(0, 64).toString('utf8')) && file.data.includes('http://www.w3.org/2000/09/xmldsig#'))
    ? ['', '## The message\'s own XML signature', '', '```sh', 'xmlsec1 --verify --trusted-pem certs/ca.pem message.bin   # add --id-attr:Id <ns>:<element> for each element signed by Id', '```'] : [];
  add('VERIFY.md', [
    `# Evidence of message ${messageId}`,
    '',
    `Exported ${new Date().toISOString()} from swx. ${records.length} evidence records in ${blocks.length + unstamped.length} archive blocks.`,
    unstamped.length ? `\n**${unstamped.length} block(s) not yet time-stamped** (${unstamped.join(', ')}): export again once the time-stamp authority has answered.` : '',
    '',
    'Run every command in this folder; each must say OK / Verified / "all checks passed". `certs/ca.pem` is the hub\'s CA:',
    'compare its fingerprint (`openssl x509 -in certs/ca.pem -noout -fingerprint -sha256`) with the one the hub operator publishes.',
    '',
    '## 1. The bundle is complete and as the hub exported it',
    '',
    '```sh',
    'openssl cms -verify -binary -inform DER -in manifest.p7s -content manifest.sha256 -CAfile certs/ca.pem -purpose any -out /dev/null',
    'sha256sum -c manifest.sha256',
    '```',
    '',
    '## 2. The time-stamps (RFC 3161) over the Merkle roots',
    '',
    '```sh',
    ...steps,
    '```',
    '',
    '## 3. Every record\'s hash, its proof into its block, and each block into a time-stamped root',
    '',
    '```sh',
    'python3 check.py',
    '```',
    '',
    'A record hash is SHA-256 over `prev_hash` followed by the JSON of the columns listed in check.py; `proof` is an RFC 9162',
    'audit path into the block root, `index/size:` then each sibling hash from the leaf level up as 43 characters of base64url',
    '(RFC 4648 §5, unpadded; earlier exports wrote 64 hex characters separated by commas), where the leaf hash is',
    'SHA-256(0x00 || record hash) and a node SHA-256(0x01 || left || right); `stamp_proof` proves the block root in the',
    'time-stamped root the same way.',
    '',
    '## 4. The signatures the hub checked (RFC 9421 HTTP Message Signatures)',
    '',
    '```sh',
    ...signatureSteps,
    '```',
    ...xmlStep,
    ...(xmlSteps.length ? ['', '## The XML signatures (ebMS 2.0, AS4): the message as signed and the receipt or Acknowledgment', '', '```sh', ...xmlSteps, '```'] : []),
    '',
    'Or, with swx installed: `swx evidence verify <this bundle>.tar [--trusted CA.pem]`.',
    '',
  ].join('\n'));

  const folder = folderName(messageId);
  const manifest = files.map((file) => `${sha256Hex(file.data)}  ${file.path}`).join('\n') + '\n';
  const manifestSignature = await signCms({ data: Buffer.from(manifest), certPem: signer.hubSign.certPem, keyPem: signer.hubSign.keyPem, chainPem: signer.hubSign.chainPem, detached: true });
  const entries = [...files, { path: 'manifest.sha256', data: Buffer.from(manifest) }, { path: 'manifest.p7s', data: manifestSignature }];
  return { name: `${folder}.tar`, tar: writeTar(entries.map((entry) => ({ path: `${folder}/${entry.path}`, data: entry.data }))) };
}

export interface BundleCheck { check: string; ok: boolean; detail: string }
export interface BundleVerdict { valid: boolean; messageId?: string; trust: 'pinned' | 'bundled'; checks: BundleCheck[] }

/**
 * Checks a bundle with swx's own code, the same checks VERIFY.md gives as openssl and python commands.
 * `trustedPem` pins the hub's CA and `trustedTsaPem` the TSA's anchors; without them the bundle's own certs/ca.pem and
 * certs/tsa-ca.pem are used, which proves integrity, not identity.
 */
export async function verifyBundle(tar: Buffer, options: { trustedPem?: string; trustedTsaPem?: string } = {}): Promise<BundleVerdict> {
  const { trustedPem, trustedTsaPem } = options;
  const entries = readTar(tar);
  const checks: BundleCheck[] = [];
  const note = (check: string, ok: boolean, detail = '') => { checks.push({ check, ok, detail }); return ok; };
  const folder = entries[0]?.path.split('/')[0] ?? '';
  const file = new Map(entries.filter((e) => e.path.startsWith(`${folder}/`)).map((e) => [e.path.slice(folder.length + 1), e.data]));
  const text = (path: string) => file.get(path)?.toString('utf8');
  const anchor = trustedPem ?? text('certs/ca.pem') ?? '';
  const verdict = (messageId?: string): BundleVerdict => ({ valid: checks.length > 0 && checks.every((c) => c.ok), ...(messageId ? { messageId } : {}), trust: trustedPem ? 'pinned' : 'bundled', checks });


  const manifest = file.get('manifest.sha256');
  const manifestSignature = file.get('manifest.p7s');
  if (!manifest || !manifestSignature) { note('manifest', false, 'manifest.sha256 or manifest.p7s is missing'); return verdict(); }
  const cms = await verifyCms(manifestSignature, { data: manifest, trustedCertsPem: [anchor] });
  note('manifest signed by the hub', cms.valid, cms.valid ? cms.signer?.subject ?? '' : `${cms.code}: ${cms.detail}`);
  const listed = new Map(manifest.toString('utf8').split('\n').filter(Boolean).map((line) => [line.slice(66), line.slice(0, 64)]));
  for (const [path, data] of file) {
    if (path === 'manifest.sha256' || path === 'manifest.p7s') continue;
    const expected = listed.get(path);
    if (expected !== sha256Hex(data)) note(`file ${path}`, false, expected ? 'SHA-256 differs from the manifest' : 'not in the manifest');
  }
  for (const path of listed.keys()) if (!file.has(path)) note(`file ${path}`, false, 'listed in the manifest but missing');
  note('files match the manifest', checks.every((c) => !c.check.startsWith('file ')), `${listed.size} files`);

  const records = (text('records.jsonl') ?? '').split('\n').filter(Boolean).map((line) => JSON.parse(line) as StoredRecord);
  const blocks = new Map((text('blocks.jsonl') ?? '').split('\n').filter(Boolean).map((line) => JSON.parse(line) as BlockRow).map((b) => [b.block_id, b]));
  const stamps = new Map<string, boolean>();
  for (const block of blocks.values()) {
    const root = block.stamp_file ? file.get(`${block.stamp_file}.root`) : undefined;
    const tsr = block.stamp_file ? file.get(`${block.stamp_file}.tsr`) : undefined;
    if (!root || !tsr) { note(`block ${block.block_id}`, false, 'not time-stamped'); continue; }
    if (!stamps.has(block.stamp_file!)) {
      const tsaAnchor = trustedTsaPem ?? trustedPem ?? text('certs/tsa-ca.pem') ?? '';
      const stamp = verifyTimeStampResponse(tsr, { data: root, trustedCertsPem: tsaAnchor, untrustedCertsPem: text('certs/tsa.pem') ?? '' });
      stamps.set(block.stamp_file!, note(`time-stamp ${block.stamp_file}`, stamp.valid, stamp.valid ? `${stamp.genTime?.toISOString()} by ${stamp.signer?.subject}` : `${stamp.code}: ${stamp.detail}`));
    }
    const proof = decodeProof(block.stamp_proof);
    note(`block ${block.block_id} in time-stamped root`, Boolean(proof && root.toString('hex') === block.stamp_root && verifyInclusion(Buffer.from(block.root, 'hex'), proof.index, proof.size, proof.path, root)));
  }
  for (const record of records) {
    const hashOk = recordHash(record) === record.record_hash;
    const block = blocks.get(record.batch_id);
    const proof = decodeProof(record.proof);
    // The root alone does not fix a proof's size (RFC 9162), so the record's place is also checked against its block.
    const inPlace = Boolean(block && proof && proof.size === Number(block.records) && proof.index === Number(record.chain) - Number(block.first_chain));
    const inBlock = inPlace && verifyInclusion(Buffer.from(record.record_hash, 'hex'), proof!.index, proof!.size, proof!.path, Buffer.from(block!.root, 'hex'));
    note(`record ${record.id} (${record.stage})`, hashOk && inBlock, !hashOk ? 'record hash does not match its columns' : !inBlock ? `no proof into block ${record.batch_id}` : `${record.at} UTC`);
  }

  const message = file.get('message.bin');
  for (const record of records.filter((r) => r.stage === 'received' && r.sha256)) {
    note('message bytes', Boolean(message && sha256Hex(message) === record.sha256), message ? `${message.length} bytes` : 'message.bin is missing');
  }
  for (const record of records) {
    if (record.stage !== 'received' && record.stage !== 'delivered') continue;
    const base = text(`${signaturePrefix(record)}-base.txt`);
    const signature = file.get(`${signaturePrefix(record)}-signature.bin`);
    const certPem = text(`${signaturePrefix(record)}-cert.pem`);
    if (!base || !signature || !certPem) continue;
    const info = JSON.parse(String(record.signature)) as SignatureInfo;
    const cert = new X509Certificate(certPem);
    const alg = info.algorithm;
    const signed = isSigAlg(alg) && info.base === base && verifySignatureBase(base, signature, cert.publicKey, alg);
    const at = new Date(info.createdAt ?? `${String(record.at).replace(' ', 'T')}Z`);
    const found = buildPath(certificate(cert), [], certificates(anchor), at.getTime());
    const refusal = 'path' in found ? undefined : found;
    note(`${record.stage} signature`, signed && !refusal, !signed ? 'signature does not verify over its base' : refusal ? `${refusal.code}: ${refusal.detail}` : `${alg} by ${cert.subject.split('\n').join(', ')} at ${at.toISOString()}`);
    if (record.stage === 'received' && message) {
      const digest = /^"content-digest"(?:;[^:]*)?: (sha-256|sha-512)=:([A-Za-z0-9+/=]+):/m.exec(base);
      note('content-digest covers message.bin', Boolean(digest && hash(digest[1] === 'sha-512' ? 'sha512' : 'sha256', message, 'base64') === digest[2]));
    }
  }
  for (const record of records) {
    if (record.stage !== 'received' && record.stage !== 'delivered') continue;
    const xml = text(`${signaturePrefix(record)}-signed.xml`);
    const certPem = text(`${signaturePrefix(record)}-cert.pem`);
    if (!xml || !certPem) continue;
    const info = JSON.parse(String(record.signature)) as SignatureInfo;
    const signed = signedXmlOf({ ...info, base: xml }, undefined);
    if (!signed || signed.parts.some((part) => part.compressed)) continue;
    const at = new Date(info.createdAt ?? `${String(record.at).replace(' ', 'T')}Z`);
    const bodies = signedPartBodies(signed, message);
    const attachments = signed.parts.flatMap((part) => {
      const kept = bodies.get(part.contentId);
      return kept ? [{ contentId: part.contentId, headers: { 'content-type': part.contentType ?? kept.contentType ?? 'application/octet-stream' }, body: kept.body }] : [];
    });
    const checked = await verifyXml(xml, { pinnedCertsPem: certPem, policy: 'archive', at, attachments });
    const found = buildPath(certificate(new X509Certificate(certPem)), [], certificates(anchor), at.getTime());
    const refusal = 'path' in found ? undefined : found;
    note(`${record.stage} XML signature`, checked.valid && !refusal, !checked.valid ? `${checked.code}: ${checked.detail}` : refusal ? `${refusal.code}: ${refusal.detail}` : `${info.algorithm} over the document${signed.parts.length ? ` and ${signed.parts.length} part(s)` : ''} at ${at.toISOString()}`);
  }
  return verdict(records[0]?.message_id as string | undefined);
}
