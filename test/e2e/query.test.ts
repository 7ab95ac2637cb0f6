// Real-time queries (即時查證) as agencies meet them over REST: the access matrix of Table 1, transcribed here by hand
// from reference/domain.md (not read from the hub's catalogue), every answer signed by the hub with evidence of the
// request and the answer, and the failures an asker must be told about: a silent provider, a badly signed answer,
// a replay, a rate limit, a malformed query.
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answer as demoAnswer, sampleQuery } from '../../app/demo-data.ts';
import { issueAgency, revokeCertificate } from '../../engine/pki/index.ts';
import { signSoap } from '../../engine/trust/index.ts';
import { queryXml } from '../../connectors/ws/messages.ts';
import { buildEnvelope } from '../../connectors/ws/soap.ts';
import { zeep, type ZeepJob } from '../helpers/zeep.ts';
import { addAgency, evidenceOf, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

// Table 1, by hand. Dataset ids are the catalogue's names for the table's datasets.
const clearanceAskers = ['BOFT', 'BSMI', 'IDB', 'NCC', 'COA', 'BAPHIQ', 'PABP', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA', 'MPB'];
const commerceAskers = ['BOFT', 'BSMI', 'IDB', 'COA', 'BAPHIQ', 'EPZA', 'DCMP', 'TFDA', 'NTA', 'SPA'];
const matrix: Record<string, { askers: string[]; providers: string[] }> = {
  'import-declaration-sea': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'import-declaration-air': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'export-declaration-sea': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'export-declaration-air': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'tax-payment-certificate': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'aeo-company': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'customs-clearance-number': { askers: clearanceAskers, providers: ['CUSTOMS'] },
  'company-registration': { askers: commerceAskers, providers: ['DOC'] },
  'business-registration': { askers: commerceAskers, providers: ['DOC'] },
  'factory-registration': { askers: commerceAskers, providers: ['DOC'] },
  'import-alcohol-consent': { askers: ['NTA'], providers: ['IDB'] },
  'quarantine-permit': { askers: ['CDC'], providers: ['CUSTOMS'] },
  'permit-attached-documents': { askers: ['IDB'], providers: ['BAPHIQ', 'TFDA'] },
  'inbound-passenger': { askers: ['CUSTOMS'], providers: ['NIA'] },
  'tariff-quota-certificate': { askers: ['CUSTOMS'], providers: ['BOT'] },
  'tariff-quota-write-off': { askers: ['BOT'], providers: ['CUSTOMS'] },
};
const agencies = [...new Set(Object.values(matrix).flatMap(({ askers, providers }) => [...askers, ...providers]))].sort();
const providers = new Set(Object.values(matrix).flatMap((row) => row.providers));
// Some providers answer over SOAP: every REST asker of their datasets is translated, and so is every SOAP asker of the others.
const soapProviders = new Set(['DOC', 'BAPHIQ', 'IDB']);

let hub: HubProcess;
const agency = new Map<string, TestAgency>();
const asked: { dataset: string; keys: Record<string, string>; asker: string; provider: string }[] = [];
let silentAsked = 0;

const demoProvider = (provider: string) => (dataset: string, keys: Record<string, string>, asker: string) => {
  asked.push({ dataset, keys, asker, provider });
  return demoAnswer(dataset, keys, provider) as Record<string, unknown> | undefined;
};

test.before(async () => {
  const dataDir = tempDir('query');
  // One asker gets its own small limit, as an operator would set it in swx.json.
  writeFileSync(join(dataDir, 'swx.json'), JSON.stringify({ query: { rateLimits: { default: { ratePerSecond: 1000, burst: 2000 }, askers: { HASTY: { ratePerSecond: 0.5, burst: 2 } } } } }));
  hub = await startHubProcess({ dataDir, env: { SWX_QUERY_DEADLINE_MS: '1500' } });
  for (const id of agencies) {
    const protocol = soapProviders.has(id) ? 'soap' as const : 'rest' as const;
    agency.set(id, await addAgency(hub, id, { receiver: false, ...(providers.has(id) ? { provider: { answer: demoProvider(id), protocol } } : {}) }));
  }
  // Two agencies outside Table 1: one with a small rate limit, one an operator grants a dataset to.
  for (const id of ['HASTY', 'MOF']) agency.set(id, await addAgency(hub, id, { receiver: false }));
});

test.after(async () => {
  for (const each of agency.values()) { each.client.close(); await each.provider?.close(); }
  await hub?.stop();
});

function firstKeys(dataset: string, provider?: string): Record<string, string> {
  return sampleQuery(dataset, 1, provider)[0]!;
}

test('a REST query is answered with the provider\'s record, signed by the hub, and both sides are evidenced', async () => {
  const keys = firstKeys('import-declaration-sea');
  const answer = await agency.get('BOFT')!.client.query('import-declaration-sea', keys, { queryId: 'boft-q-0001' });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  assert.ok(answer.signed, 'the hub signs its answer');
  assert.is(answer.body.queryId, 'boft-q-0001');
  assert.is(answer.body.provider, 'CUSTOMS');
  assert.is(answer.body.found, true);
  assert.equal(answer.body.record, JSON.parse(JSON.stringify(demoAnswer('import-declaration-sea', keys))));
  assert.equal(asked.at(-1), { dataset: 'import-declaration-sea', keys, asker: 'BOFT', provider: 'CUSTOMS' }, 'the provider learns who asks');

  const rows = await evidenceOf(hub, 'boft-q-0001', ['received', 'answered']);
  const received = rows.find((row) => row.stage === 'received');
  const answered = rows.find((row) => row.stage === 'answered');
  assert.ok(received && answered, JSON.stringify(rows));
  assert.is(received.from_partner, 'BOFT');
  assert.is(received.to_partner, 'CUSTOMS');
  assert.is(JSON.parse(Buffer.from(received.raw, 'base64').toString('utf8')).keys.declarationNo, keys.declarationNo);
  assert.is(JSON.parse(received.signature).scheme, 'http-message-signatures');
  assert.is(answered.from_partner, 'CUSTOMS');
  assert.is(answered.to_partner, 'BOFT');
  assert.match(Buffer.from(answered.raw, 'base64').toString('utf8'), keys.declarationNo!, 'the answer as the provider signed it');
  assert.ok(JSON.parse(answered.signature).certThumbprint, 'with the provider\'s signature');
});

test('zeep asks over SOAP 1.1 and 1.2 with WS-Security, from a REST provider and a SOAP provider, and verifies the hub\'s signed answers', async () => {
  const declaration = firstKeys('import-declaration-sea');
  const company = firstKeys('company-registration');
  const [sea11, sea12] = await askWithZeep('TFDA', 'import-declaration-sea', [{ binding: 'Soap11', keys: declaration }, { binding: 'Soap12', keys: declaration }]);
  const [registration] = await askWithZeep('TFDA', 'company-registration', [{ binding: 'Soap12', keys: company }]);
  const [denied] = await askWithZeep('TFDA', 'inbound-passenger', [{ binding: 'Soap11', keys: firstKeys('inbound-passenger') }]);
  const plain = (value: unknown) => JSON.parse(JSON.stringify(value));
  for (const outcome of [sea11, sea12]) {
    assert.ok(outcome.answer, JSON.stringify(outcome));
    assert.is(outcome.answer.provider, 'CUSTOMS', 'answered over REST, asked over SOAP');
    assert.equal(outcome.answer.record, plain(demoAnswer('import-declaration-sea', declaration)));
  }
  assert.ok(registration.answer, JSON.stringify(registration));
  assert.is(registration.answer.provider, 'DOC', 'SOAP on both legs');
  assert.equal(registration.answer.record, plain(demoAnswer('company-registration', company)));
  assert.equal(denied.fault, 'SWX_ACL_DENIED', 'a refusal is a SOAP fault carrying the code');

  const rows = await evidenceOf(hub, sea11.answer.queryId, ['received', 'answered']);
  const received = rows.find((row) => row.stage === 'received');
  assert.is(received?.protocol, 'soap');
  assert.is(JSON.parse(received.signature).scheme, 'xmldsig');
  assert.match(Buffer.from(received.raw, 'base64').toString('utf8'), /BinarySecurityToken/, 'the request as zeep signed it');
});

test('REST askers of a SOAP provider: the hub translates the query to SOAP and the answer back to JSON', async () => {
  const keys = firstKeys('factory-registration');
  const answer = await agency.get('IDB')!.client.query('factory-registration', keys);
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  assert.ok(answer.signed);
  assert.equal(answer.body.record, JSON.parse(JSON.stringify(demoAnswer('factory-registration', keys))));
  const rows = await evidenceOf(hub, String(answer.body.queryId), ['answered']);
  assert.match(Buffer.from(rows.find((row) => row.stage === 'answered').raw, 'base64').toString('utf8'), /Envelope/, 'the provider\'s signed SOAP answer is the evidence');
});

test('swx send --query and the curl request printed by swx sign --query are answered over REST with mutual TLS', async () => {
  const nta = agency.get('NTA')!;
  const pkiDir = join(hub.dataDir, 'pki');
  const keys = firstKeys('import-alcohol-consent');
  const common = [
    '--query', 'import-alcohol-consent', '--hub', `https://localhost:${hub.agencyPort}`,
    '--cert', nta.credential.certPath, '--key', nta.credential.keyPath, '--ca', join(pkiDir, 'ca', 'cert.pem'), '--hub-cert', join(pkiDir, 'hub-sign', 'cert.pem'),
  ];
  const sent = await run(process.execPath, [swxBin, 'send', ...common, `certificateNo=${keys.certificateNo}`]);
  assert.is(sent.code, 0, sent.stdout + sent.stderr);
  const answer = JSON.parse(sent.stdout);
  assert.is(answer.provider, 'IDB');
  assert.equal(answer.record, JSON.parse(JSON.stringify(demoAnswer('import-alcohol-consent', keys))));
  assert.not.match(sent.stderr, /not checked/, 'the CLI checked the hub\'s signature');

  const signed = await run(process.execPath, [swxBin, 'sign', ...common, '--id', 'NTA-CURL-1', `certificateNo=${keys.certificateNo}`]);
  assert.is(signed.code, 0, signed.stderr);
  const curl = signed.stdout.slice(signed.stdout.indexOf('curl ')).replace(/\\\n\s*/g, ' ').trim();
  const viaCurl = await run('bash', ['-c', `${curl} --silent --show-error --write-out '\\n%{http_code}'`]);
  const [body, status] = viaCurl.stdout.trim().split('\n');
  assert.is(status, '200', body);
  assert.is(JSON.parse(body!).queryId, 'NTA-CURL-1');
  assert.is(JSON.parse(body!).found, true);
});

test('an unknown key is answered "not found", which is an answer too', async () => {
  const answer = await agency.get('NTA')!.client.query('company-registration', { ubn: '00000000' });
  assert.is(answer.status, 200, JSON.stringify(answer.body));
  assert.is(answer.body.found, false);
  assert.is(answer.body.record, undefined);
});

test('access matrix: every Table 1 (asker, dataset) pair is answered; every other pair among the agencies is refused SWX_ACL_DENIED with evidence', async () => {
  const refusals: { asker: string; dataset: string; queryId: string }[] = [];
  const failures: string[] = [];
  for (const [dataset, { askers, providers: answering }] of Object.entries(matrix)) {
    const provider = answering.length > 1 ? answering[0] : undefined;
    const keys = firstKeys(dataset, provider);
    await Promise.all(agencies.map(async (asker) => {
      const answer = await agency.get(asker)!.client.query(dataset, keys, provider ? { provider } : {});
      if (askers.includes(asker)) {
        if (answer.status !== 200 || answer.body.found !== true || !answer.signed) failures.push(`${asker} → ${dataset}: ${answer.status} ${JSON.stringify(answer.body)}`);
      } else if (answer.status !== 403 || answer.body.code !== 'SWX_ACL_DENIED') {
        failures.push(`${asker} → ${dataset} should be denied: ${answer.status} ${JSON.stringify(answer.body)}`);
      } else {
        refusals.push({ asker, dataset, queryId: String(answer.body.queryId) });
      }
    }));
  }
  assert.equal(failures, []);
  const allowed = Object.values(matrix).reduce((sum, row) => sum + row.askers.length, 0);
  assert.is(refusals.length, agencies.length * Object.keys(matrix).length - allowed);
  // Each refusal is evidenced under the id the asker was told.
  const missing: string[] = [];
  for (let i = 0; i < refusals.length; i += 16) {
    await Promise.all(refusals.slice(i, i + 16).map(async ({ asker, dataset, queryId }) => {
      const rows = await evidenceOf(hub, queryId, 'rejected');
      const rejected = rows.find((row) => row.stage === 'rejected');
      if (rejected?.code !== 'SWX_ACL_DENIED' || rejected.from_partner !== asker || rejected.service !== `query.${dataset}`) missing.push(`${asker} → ${dataset}`);
    }));
  }
  assert.equal(missing, []);
});

test('a dataset with two providers: the asker names BAPHIQ or TFDA, and gets that provider\'s record', async () => {
  const idb = agency.get('IDB')!.client;
  const unnamed = await idb.query('permit-attached-documents', firstKeys('permit-attached-documents', 'TFDA'));
  assert.is(unnamed.status, 400);
  assert.is(unnamed.body.code, 'SWX_BAD_REQUEST');
  assert.match(String(unnamed.body.detail), /BAPHIQ, TFDA/);
  assert.ok(unnamed.signed, 'a refusal is the hub\'s signed word too, naming the id it was evidenced under');
  assert.is(unnamed.headers['swx-message-id'], unnamed.body.queryId);
  for (const provider of ['BAPHIQ', 'TFDA']) {
    const keys = firstKeys('permit-attached-documents', provider);
    const answer = await idb.query('permit-attached-documents', keys, { provider });
    assert.is(answer.status, 200, JSON.stringify(answer.body));
    assert.is(answer.body.provider, provider);
    assert.is((answer.body.record as { issuedBy: string }).issuedBy, provider);
  }
  const other = await idb.query('permit-attached-documents', firstKeys('permit-attached-documents', 'TFDA'), { provider: 'CUSTOMS' });
  assert.is(other.status, 403);
  assert.is(other.body.code, 'SWX_ACL_DENIED');
  assert.ok(other.signed);
});

test('the hub serves its OpenAPI document and each dataset\'s WSDL without a client certificate', async () => {
  const ca = agency.get('BOFT')!.credentials.caPem;
  const openapi = await rawGet(`https://localhost:${hub.agencyPort}/v1/openapi.json`, ca);
  assert.is(openapi.status, 200);
  const document = JSON.parse(openapi.text);
  assert.is(document.openapi, '3.1.0');
  assert.equal(Object.keys(document.paths).filter((path) => path.startsWith('/v1/query/')).sort(), Object.keys(matrix).map((id) => `/v1/query/${id}`).sort());
  const wsdl = await rawGet(`https://localhost:${hub.agencyPort}/ws/query/inbound-passenger?wsdl`, ca);
  assert.is(wsdl.status, 200);
  assert.match(wsdl.text, /passportNo/);
  assert.match(wsdl.text, /arrivalDate/);
});

test('bad queries: unknown dataset, missing or extra keys, a body that is not the query shape', async () => {
  const boft = agency.get('BOFT')!.client;
  const unknown = await boft.query('no-such-dataset', { x: '1' });
  assert.is(unknown.status, 404);
  assert.is(unknown.body.code, 'SWX_UNKNOWN_DATASET');
  const missing = await boft.query('import-declaration-sea', {});
  assert.is(missing.status, 400);
  assert.match(String(missing.body.detail), /declarationNo/);
  const unexpected = await rawPost(`https://localhost:${hub.agencyPort}/v1/query/import-declaration-sea`, {}, Buffer.alloc(0), agency.get('BOFT')!.credentials);
  assert.is(unexpected.status, 401, 'unsigned');
  const extra = await boft.query('import-declaration-sea', { ...firstKeys('import-declaration-sea'), sql: 'drop' });
  assert.is(extra.status, 400);
  assert.is(extra.body.code, 'SWX_BAD_REQUEST');
  const rows = await evidenceOf(hub, String(extra.body.queryId), 'rejected');
  assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_BAD_REQUEST');
});

test('hostile input on the running hub: an XML bomb over SOAP and an oversized REST query are refused with their codes and evidenced', async () => {
  const boft = agency.get('BOFT')!;
  const bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    + '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><q:Query xmlns:q="urn:swx:query:1">'
    + '<q:declarationNo>&lol2;</q:declarationNo></q:Query></soap:Body></soap:Envelope>';
  const soap = await rawPost(`https://localhost:${hub.agencyPort}/ws/query/import-declaration-sea`, {
    'content-type': 'text/xml; charset=utf-8', soapaction: '"urn:swx:query:1:import-declaration-sea"',
  }, Buffer.from(bomb), boft.credentials);
  assert.is(soap.status, 500, soap.text);
  assert.match(soap.text, /<q:code[^>]*>SWX_XML_FORBIDDEN<\/q:code>/);
  const soapId = /<q:messageId[^>]*>([^<]+)<\/q:messageId>/.exec(soap.text)?.[1];
  assert.ok(soapId, 'the fault names the evidence');
  const soapRows = await evidenceOf(hub, soapId!, ['received', 'rejected']);
  assert.is(soapRows.find((row) => row.stage === 'rejected')?.code, 'SWX_XML_FORBIDDEN');
  assert.is(soapRows.find((row) => row.stage === 'rejected')?.from_partner, 'BOFT', 'the TLS-authenticated asker');
  assert.match(Buffer.from(soapRows.find((row) => row.stage === 'received').raw, 'base64').toString('utf8'), /DOCTYPE lolz/, 'the hostile bytes as received');

  const huge = boft.client.signedQuery('import-declaration-sea', { declarationNo: 'x'.repeat(70 * 1024) });
  const rest = await rawPost(huge.url, huge.headers, huge.body, boft.credentials);
  assert.is(rest.status, 413, rest.text);
  const problem = JSON.parse(rest.text);
  assert.is(problem.code, 'SWX_TOO_LARGE');
  const restRows = await evidenceOf(hub, problem.queryId, 'rejected');
  assert.is(restRows.find((row) => row.stage === 'rejected')?.code, 'SWX_TOO_LARGE');
});

test('hostile SOAP on the running hub: tampered digest or signature, unknown algorithm, wrapping, XXE, revoked certificate; each its own code and an evidence record', async () => {
  const pkiDir = join(hub.dataDir, 'pki');
  const rogueDeclaration = firstKeys('import-declaration-sea').declarationNo!;
  const signed = (as: TestAgency) => signSoap(buildEnvelope('1.1', queryXml({ keys: { declarationNo: rogueDeclaration } })), { keyPem: as.credentials.keyPem, certPem: as.credentials.certPem });
  const boft = agency.get('BOFT')!;
  const revoked = await addAgency(hub, 'REVOKED', { receiver: false });
  await hub.admin('PUT', '/api/catalogue/import-declaration-sea', { ...(await hub.admin('GET', '/api/catalogue/import-declaration-sea')).body, askers: [...clearanceAskers, 'REVOKED'] });
  await revokeCertificate(pkiDir, { agency: 'REVOKED' }, 'keyCompromise');
  await waitFor('the revocation to reach the hub', async () => (await revoked.client.query('import-declaration-sea', { declarationNo: rogueDeclaration })).body.code === 'SWX_CERT_REVOKED', 20_000);

  const cases: [name: string, as: TestAgency, body: () => Promise<string>, code: string][] = [
    ['tampered Body (digest)', boft, async () => (await signed(boft)).replace(rogueDeclaration, 'AA  13XXX99999'), 'SWX_DIGEST_MISMATCH'],
    ['tampered SignatureValue', boft, async () => (await signed(boft)).replace(/(<ds:SignatureValue>)(.)/, (_, open: string, first: string) => open + (first === 'A' ? 'B' : 'A')), 'SWX_SIG_INVALID'],
    ['unknown signature algorithm', boft, async () => (await signed(boft)).replace(/(SignatureMethod Algorithm=")[^"]+/, '$1urn:example:rot13'), 'SWX_SIG_ALG_UNSUPPORTED'],
    ['wrapped Body', boft, async () => {
      const original = await signed(boft);
      const body = /<soap:Body[\s\S]*<\/soap:Body>/.exec(original)![0];
      return original.replace(body, `<soap:Body>${queryXml({ keys: { declarationNo: 'AA  13XXX00000' } })}</soap:Body>`).replace('</soap:Header>', `<w:Wrapper xmlns:w="urn:example:w">${body}</w:Wrapper></soap:Header>`);
    }, 'SWX_SIG_WRAPPED'],
    ['XXE', boft, async () => `<?xml version="1.0"?><!DOCTYPE q [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${buildEnvelope('1.1', '<q:Query xmlns:q="urn:swx:query:1"><q:declarationNo>&xxe;</q:declarationNo></q:Query>')}`, 'SWX_XML_FORBIDDEN'],
    ['revoked certificate', revoked, () => signed(revoked), 'SWX_CERT_REVOKED'],
  ];
  const wrong: string[] = [];
  for (const [name, as, body, code] of cases) {
    const reply = await rawPost(`https://localhost:${hub.agencyPort}/ws/query/import-declaration-sea`, {
      'content-type': 'text/xml; charset=utf-8', soapaction: '"urn:swx:query:1:import-declaration-sea"',
    }, Buffer.from(await body()), as.credentials);
    const got = /<q:code[^>]*>([A-Z_]+)<\/q:code>/.exec(reply.text)?.[1];
    const id = /<q:messageId[^>]*>([^<]+)<\/q:messageId>/.exec(reply.text)?.[1];
    const rows = id ? await evidenceOf(hub, id, 'rejected') : [];
    const evidenced = rows.find((row) => row.stage === 'rejected')?.code;
    if (got !== code || evidenced !== code) wrong.push(`${name}: fault ${got}, evidence ${evidenced} (expected ${code})`);
  }
  assert.equal(wrong, []);
});

test('a replayed signed query is refused SWX_REPLAY; a fresh signature of the same query is answered', async () => {
  const customs = agency.get('CUSTOMS')!;
  const keys = firstKeys('inbound-passenger');
  const signed = customs.client.signedQuery('inbound-passenger', keys);
  const send = () => rawPost(signed.url, signed.headers, signed.body, customs.credentials);
  const first = await send();
  assert.is(first.status, 200, first.text);
  const replay = await send();
  assert.is(replay.status, 409, replay.text);
  assert.is(JSON.parse(replay.text).code, 'SWX_REPLAY');
  const again = await customs.client.query('inbound-passenger', keys);
  assert.is(again.status, 200);
  // The same signature under another label, or with a member added, is the same signed request.
  const relabelled = Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name, name.startsWith('signature') ? value.replace(/^sig1=/, 'other=') : value]));
  const renamed = await rawPost(signed.url, relabelled, signed.body, customs.credentials);
  assert.is(JSON.parse(renamed.text).code, 'SWX_REPLAY', renamed.text);
  const extended = await rawPost(signed.url, { ...signed.headers, signature: `${signed.headers.signature}, x=:AAAA:` }, signed.body, customs.credentials);
  assert.is(JSON.parse(extended.text).code, 'SWX_REPLAY', extended.text);
});

test('an asker\'s query id names one query: used again (other keys, fresh signature) it is refused SWX_DUPLICATE_CONFLICT', async () => {
  const customs = agency.get('CUSTOMS')!.client;
  assert.is((await customs.query('inbound-passenger', firstKeys('inbound-passenger'), { queryId: 'customs-q-42' })).status, 200);
  const reused = await customs.query('quarantine-permit', firstKeys('quarantine-permit'), { queryId: 'customs-q-42' });
  assert.is(reused.status, 409, JSON.stringify(reused.body));
  assert.is(reused.body.code, 'SWX_DUPLICATE_CONFLICT');
  assert.is.not(reused.body.queryId, 'customs-q-42', 'the refusal is evidenced under an id of its own');
});

test('per-asker rate limit: past its burst an asker gets 429 SWX_RATE_LIMITED before anything else is looked at', async () => {
  const hasty = agency.get('HASTY')!.client;
  const keys = firstKeys('aeo-company');
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await hasty.query('aeo-company', keys)).body.code);
  assert.equal(codes.slice(0, 2), ['SWX_ACL_DENIED', 'SWX_ACL_DENIED'], 'within its burst it is judged as usual');
  assert.equal(codes.slice(2), ['SWX_RATE_LIMITED', 'SWX_RATE_LIMITED']);
  const limited = await hasty.query('aeo-company', keys);
  assert.is(limited.status, 429);
  assert.match(String(limited.body.detail), /retry after \d+ s/);
  const seconds = String(limited.headers['retry-after']);
  assert.match(seconds, /^[1-9]\d*$/, 'a 429 says when to retry');
  assert.ok(String(limited.body.detail).includes(`retry after ${seconds} s`), 'the header and the detail agree');
  assert.is((await agency.get('MPB')!.client.query('aeo-company', keys)).status, 200, 'other askers are unaffected');
});

test('the matrix is edited through the admin API, takes effect at once, and keeps its history', async () => {
  const mof = agency.get('MOF')!.client;
  const keys = firstKeys('company-registration');
  assert.is((await mof.query('company-registration', keys)).body.code, 'SWX_ACL_DENIED');
  const original = (await hub.admin('GET', '/api/catalogue/company-registration')).body;
  const widened = await hub.admin('PUT', '/api/catalogue/company-registration', { ...original, askers: [...original.askers, 'MOF'] });
  assert.is(widened.status, 200, JSON.stringify(widened.body));
  const allowed = await mof.query('company-registration', keys);
  assert.is(allowed.status, 200, JSON.stringify(allowed.body));
  assert.is(allowed.body.found, true);
  assert.is((await hub.admin('PUT', '/api/catalogue/company-registration', original)).status, 200);
  assert.is((await mof.query('company-registration', keys)).body.code, 'SWX_ACL_DENIED');
  const history = (await hub.admin('GET', '/api/catalogue/company-registration/history')).body as { value: { askers: string[] } }[];
  assert.equal(history.slice(-3).map((revision) => revision.value.askers.includes('MOF')), [false, true, false]);
});

test('a provider that does not answer: the asker hears SWX_PROVIDER_TIMEOUT at the deadline, and the failure is evidenced', async () => {
  await addAgency(hub, 'NIA', { receiver: false, provider: { answer: () => { silentAsked++; return new Promise(() => undefined); } } });
  const started = Date.now();
  const answer = await agency.get('CUSTOMS')!.client.query('inbound-passenger', firstKeys('inbound-passenger'));
  const elapsed = Date.now() - started;
  assert.is(answer.status, 504, JSON.stringify(answer.body));
  assert.is(answer.body.code, 'SWX_PROVIDER_TIMEOUT');
  assert.ok(silentAsked === 1, 'the provider was asked');
  assert.ok(elapsed >= 1400 && elapsed < 3000, `answered after ${elapsed} ms with a 1500 ms deadline`);
  const rows = await evidenceOf(hub, String(answer.body.queryId), 'query_failed');
  assert.is(rows.find((row) => row.stage === 'query_failed')?.code, 'SWX_PROVIDER_TIMEOUT');
});

test('a provider\'s unsigned error text never reaches the asker', async () => {
  const nia = agency.get('NIA')!;
  const leaking = createServer({ cert: nia.credentials.certPem, key: nia.credentials.keyPem }, (_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ secret: 'passenger TEST99999 flagged by informant' }));
  });
  await new Promise<void>((resolve) => leaking.listen(0, '127.0.0.1', resolve));
  const port = (leaking.address() as { port: number }).port;
  await hub.admin('PUT', '/api/partners/NIA', { name: 'NIA', certificates: [nia.credential.certPem], endpoints: { rest: { queryUrl: `https://localhost:${port}/query` } } });
  try {
    const answer = await agency.get('CUSTOMS')!.client.query('inbound-passenger', firstKeys('inbound-passenger'));
    assert.is(answer.status, 502, JSON.stringify(answer.body));
    assert.is(answer.body.code, 'SWX_PROVIDER_ERROR');
    assert.not.match(JSON.stringify(answer.body), /informant/);
    assert.match(String(answer.body.detail), /not validly signed/);
  } finally {
    leaking.close();
  }
});

test('a provider whose answer is signed by a key not registered to it: SWX_PROVIDER_ERROR, never the data', async () => {
  const rogue = await issueAgency(join(hub.dataDir, 'pki'), 'ROGUE');
  await addAgency(hub, 'BOT', { receiver: false, provider: { answer: demoProvider('BOT'), credentials: rogue } });
  const keys = firstKeys('tariff-quota-certificate');
  const answer = await agency.get('CUSTOMS')!.client.query('tariff-quota-certificate', keys);
  assert.is(answer.status, 502, JSON.stringify(answer.body));
  assert.is(answer.body.code, 'SWX_PROVIDER_ERROR');
  assert.is(answer.body.record, undefined);
  assert.not.match(JSON.stringify(answer.body), keys.certificateNo!, 'nothing of the unverified answer reaches the asker');
  const rows = await evidenceOf(hub, String(answer.body.queryId), 'query_failed');
  assert.is(rows.find((row) => row.stage === 'query_failed')?.code, 'SWX_PROVIDER_ERROR');
});

test('REST asker, SOAP provider: a key no protocol carries unchanged (control character, lone surrogate, noncharacter) is refused SWX_BAD_REQUEST naming it, before any provider is asked', async () => {
  const before = asked.length;
  for (const factoryNo of ['AB\u0001CD', 'AB\ud800CD', '\udc00', 'x\u001f', '\uffff']) {
    const answer = await agency.get('IDB')!.client.query('factory-registration', { factoryNo });
    assert.is(answer.status, 400, JSON.stringify(answer.body));
    assert.ok(answer.signed);
    assert.is(answer.body.code, 'SWX_BAD_REQUEST');
    assert.match(String(answer.body.detail), /factoryNo/);
    const rows = await evidenceOf(hub, String(answer.body.queryId), 'rejected');
    assert.is(rows.find((row) => row.stage === 'rejected')?.code, 'SWX_BAD_REQUEST');
  }
  assert.is(asked.length, before, 'the SOAP provider was never asked');
});

test('a provider whose own code throws: the asker hears a signed SWX_PROVIDER_ERROR, the query is evidenced and the hub keeps serving (33 emoji as the key)', async () => {
  const thrown: Record<string, string>[] = [];
  const nia = await addAgency(hub, 'NIA', { receiver: false, provider: { answer: (_dataset, keys) => { thrown.push(keys); throw new RangeError('the provider\'s own check failed'); } } });
  try {
    const keys = { passportNo: '\u{1F600}'.repeat(33), arrivalDate: '2026-11-27' };
    const answer = await agency.get('CUSTOMS')!.client.query('inbound-passenger', keys);
    assert.is(answer.status, 502, JSON.stringify(answer.body));
    assert.ok(answer.signed);
    assert.is(answer.body.code, 'SWX_PROVIDER_ERROR');
    assert.match(String(answer.body.detail), /answered 500: .*own check failed/, 'the provider\'s signed 500');
    assert.equal(thrown, [keys], 'the provider was asked exactly what the asker signed');
    const rows = await evidenceOf(hub, String(answer.body.queryId), 'query_failed');
    assert.is(rows.find((row) => row.stage === 'query_failed')?.code, 'SWX_PROVIDER_ERROR');
    assert.is(hub.proc.exitCode, null);
    const next = await agency.get('IDB')!.client.query('factory-registration', firstKeys('factory-registration'));
    assert.is(next.status, 200, 'the hub still answers');
  } finally {
    await nia.provider?.close();
  }
});

/** zeep as `asker`, with the hub's own WSDL for `dataset`. */
function askWithZeep(asker: string, dataset: string, calls: ZeepJob['calls']): Promise<any[]> {
  const credential = agency.get(asker)!.credential;
  const pkiDir = join(hub.dataDir, 'pki');
  return zeep({
    wsdl: `https://localhost:${hub.agencyPort}/ws/query/${dataset}?wsdl`, service: dataset, alg: 'ecdsa', calls,
    cert: credential.certPath, key: credential.keyPath, ca: join(pkiDir, 'ca', 'cert.pem'), hubCert: join(pkiDir, 'hub-sign', 'cert.pem'),
  });
}

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function rawGet(url: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject).end();
  });
}

function rawPost(url: string, headers: Record<string, string>, body: Buffer, credentials: TestAgency['credentials']): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, cert: credentials.certPem, key: credentials.keyPem, ca: credentials.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test.run();
