// The console's data routes on a running hub, fed by messages agencies really sent: message search and timelines,
// statistics (JSON and CSV), the overview, the analysts' SQL and shared panels, alerts, runtime settings and the
// dead-letter preview and bulk resend. Each route is tried with a role that may call it and one that may not.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Role } from '../../dashboards/users.ts';
import { consoleRequest, roleTokens, type Answer, type ConsoleRequest } from '../helpers/console.ts';
import { issueCertificate } from '../../engine/pki/index.ts';
import { addAgency, addService, evidenceOf, startHubProcess, swxCommand, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';

let hub: HubProcess;
/** Thresholds low enough for a test to cross: one failure opens a breaker, two waiting deliveries are a backlog, a receipt is missing after 0.6 s. */
const alertEnv = { SWX_NODE_NAME: 'console-data', SWX_BREAKER_FAILURES: '1', SWX_ALERT_BACKLOG: '1', SWX_ALERT_RECEIPT_MINUTES: '0.01' };
let tokens = {} as Record<Role, string>;
let customs: TestAgency;
let boft: TestAgency;
const sent: string[] = [];
/** The certificate of FDA, an agency whose endpoint refuses every connection. */
let down = '';
const hourAgo = () => new Date(Date.now() - 3_600_000).toISOString();
const soon = () => new Date(Date.now() + 3_600_000).toISOString();

const call = (role: Role | undefined, method: string, path: string, options: ConsoleRequest = {}): Promise<Answer> =>
  consoleRequest(hub, method, path, { ...options, ...(role ? { bearer: tokens[role] } : {}) });

/** As a role that may not: 403 SWX_ROLE_DENIED. */
async function refused(role: Role, method: string, path: string, body?: unknown): Promise<void> {
  const answer = await call(role, method, path, body === undefined ? {} : { body });
  assert.is(answer.status, 403, `${role} ${method} ${path}: ${answer.text.slice(0, 200)}`);
  assert.is(answer.body.code, 'SWX_ROLE_DENIED');
}

test.before(async () => {
  hub = await startHubProcess({ env: alertEnv });
  tokens = await roleTokens(hub);
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT');
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  for (let i = 0; i < 3; i++) {
    const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from(`{"n":${i}}`), conversationId: 'conv-console-1' });
    assert.is(answer.status, 202, JSON.stringify(answer.body));
    sent.push(String((answer.body as { id: string }).id));
  }
  // A service BOFT may not use towards CUSTOMS: refused, and evidenced as rejected.
  const refusedAnswer = await boft.client.send({ to: 'CUSTOMS', service: 'customs.declaration', action: 'deliver', contentType: 'application/json', body: Buffer.from('{}') });
  assert.is(refusedAnswer.status, 403);
  for (const id of sent) await evidenceOf(hub, id, 'delivered');
});

test.after(async () => {
  await boft?.receiver?.close();
  await customs?.receiver?.close();
  await hub?.stop();
});

test('messages: search by filter, by any id and by partner, keyset-paged with an opaque cursor; operators and auditors only', async () => {
  const all = await call('operator', 'GET', `/api/messages?service=customs.declaration&since=${encodeURIComponent(hourAgo())}`);
  assert.is(all.status, 200, all.text);
  const ours = all.body.rows.filter((row: any) => sent.includes(row.messageId));
  assert.is(ours.length, 3);
  for (const row of ours) {
    assert.is(row.from, 'CUSTOMS');
    assert.is(row.to, 'BOFT');
    assert.is(row.state, 'delivered');
    assert.equal(row.delivered, ['BOFT']);
  }
  // Newest first, one at a time: the cursor walks every message once.
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await call('auditor', 'GET', `/api/messages?sender=CUSTOMS&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    assert.is(page.status, 200, page.text);
    seen.push(...page.body.rows.map((row: any) => row.messageId));
    cursor = page.body.next;
  } while (cursor);
  assert.equal([...seen].sort(), [...sent].sort());
  const byConversation = await call('operator', 'GET', '/api/messages?key=conv-console-1&keyKind=conversation');
  assert.is(byConversation.body.rows.length, 3);
  const byId = await call('operator', 'GET', `/api/messages?key=${sent[1]}`);
  assert.equal(byId.body.rows.map((row: any) => row.messageId), [sent[1]]);
  const byPartner = await call('operator', 'GET', '/api/messages?partner=BOFT');
  assert.ok(byPartner.body.rows.some((row: any) => row.state === 'rejected' && row.from === 'BOFT'), 'BOFT\'s refused message, as sender');
  assert.ok(sent.every((id) => byPartner.body.rows.some((row: any) => row.messageId === id)), 'and the ones it received');
  const rejected = await call('operator', 'GET', '/api/messages?state=rejected');
  assert.ok(rejected.body.rows.length >= 1 && rejected.body.rows.every((row: any) => row.state === 'rejected'));
  // Hostile or wrong input: a clear 400, never a 500.
  for (const query of ['cursor=bm90LWpzb24', 'cursor=e30', 'limit=0', 'limit=5000', 'state=lost', 'since=yesterday', 'partner=%27%3B%20DROP', 'keyKind=name']) {
    const answer = await call('operator', 'GET', `/api/messages?${query}`);
    assert.is(answer.status, 400, `${query}: ${answer.text.slice(0, 200)}`);
    assert.is(answer.body.code, 'SWX_BAD_REQUEST');
  }
  await refused('analyst', 'GET', '/api/messages');
  await refused('admin', 'GET', '/api/messages');
});

test('a message\'s timeline: received, verified, archived, routed, delivered, in order', async () => {
  // The archive writes a block's record (archived, stamped) just after the block's evidence rows.
  let answer!: Answer;
  await waitFor('the archived entry', async () => {
    answer = await call('auditor', 'GET', `/api/messages/${sent[0]}/timeline`);
    return answer.status === 200 && answer.body.entries.some((entry: any) => entry.stage === 'archived');
  }, 15_000);
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.body.messageId, sent[0]);
  const stages = answer.body.entries.map((entry: any) => entry.stage);
  for (const stage of ['received', 'verified', 'routed', 'delivered', 'archived']) assert.ok(stages.includes(stage), `${stage} in ${stages}`);
  assert.ok(stages.indexOf('received') < stages.indexOf('delivered'));
  const times = answer.body.entries.map((entry: any) => entry.at);
  assert.equal(times, [...times].sort());
  assert.is((await call('operator', 'GET', '/api/messages/never-sent-here/timeline')).status, 404);
  assert.is((await call('operator', 'GET', `/api/messages/${'x'.repeat(300)}/timeline`)).status, 400);
  await refused('analyst', 'GET', `/api/messages/${sent[0]}/timeline`);
});

test('statistics: traffic, trend, latency, errors and top talkers from the rollups, as JSON and CSV; analysts, operators, auditors', async () => {
  const period = `since=${encodeURIComponent(hourAgo())}&until=${encodeURIComponent(soon())}`;
  const traffic = await call('analyst', 'GET', `/api/stats/traffic?${period}&grain=hour&by=service,protocol`);
  assert.is(traffic.status, 200, traffic.text);
  const declarations = traffic.body.rows.filter((row: any) => row.service === 'customs.declaration');
  const sum = (rows: any[], key: string) => rows.reduce((total, row) => total + row[key], 0);
  assert.is(sum(declarations, 'messages'), 3);
  assert.is(sum(declarations, 'deliveries'), 3);
  assert.is(sum(declarations, 'rejections'), 1);
  assert.ok(declarations.every((row: any) => row.protocol === 'rest' && /^\d{4}-\d\d-\d\dT\d\d:00:00Z$/.test(row.bucket)), JSON.stringify(declarations));
  const latency = await call('operator', 'GET', `/api/stats/latency?${period}&grain=hour`);
  assert.is(latency.status, 200, latency.text);
  const measured = latency.body.rows.filter((row: any) => row.deliveries > 0);
  assert.ok(measured.length >= 1);
  for (const row of measured) assert.ok(row.p50Ms >= 0 && row.p50Ms <= row.p95Ms && row.p95Ms <= row.p99Ms, JSON.stringify(row));
  const errors = await call('auditor', 'GET', `/api/stats/errors?${period}&grain=day&by=code`);
  assert.is(errors.status, 200, errors.text);
  assert.is(sum(errors.body.rows.filter((row: any) => row.code === 'SWX_ACL_DENIED'), 'rejections'), 1);
  const senders = await call('analyst', 'GET', `/api/stats/top-talkers?${period}&side=sender`);
  assert.is(senders.status, 200, senders.text);
  assert.equal(senders.body.rows.find((row: any) => row.partner === 'CUSTOMS')?.messages, 3);
  const receivers = await call('analyst', 'GET', `/api/stats/top-talkers?${period}&side=receiver&limit=1`);
  assert.equal(receivers.body.rows.map((row: any) => [row.partner, row.messages]), [['BOFT', 3]]);
  const trend = await call('analyst', 'GET', '/api/stats/trend?grain=year&by=sender');
  assert.is(trend.status, 200, trend.text);
  assert.is(sum(trend.body.rows.filter((row: any) => row.sender === 'CUSTOMS'), 'messages'), 3);
  // Every panel as a CSV file: a header, then one line per row.
  for (const panel of ['traffic', 'trend', 'latency', 'errors', 'top-talkers']) {
    const json = await call('analyst', 'GET', `/api/stats/${panel}?format=json`);
    const csv = await call('analyst', 'GET', `/api/stats/${panel}?format=csv`);
    assert.is(csv.status, 200, `${panel}: ${csv.text}`);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    const lines = csv.text.split('\r\n').filter(Boolean);
    assert.is(lines.length, json.body.rows.length === 0 ? 0 : json.body.rows.length + 1, panel);
    if (lines.length) assert.equal(lines[0]!.split(','), Object.keys(json.body.rows[0]));
    await refused('admin', 'GET', `/api/stats/${panel}`);
  }
  // Wrong questions: a clear 400.
  for (const query of ['traffic?by=sender&grain=hour', 'traffic?by=weather', 'traffic?grain=week', 'trend?grain=day', 'latency?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', 'top-talkers?side=both', 'errors?format=xml']) {
    const answer = await call('analyst', 'GET', `/api/stats/${query}`);
    assert.is(answer.status, 400, `${query}: ${answer.text.slice(0, 200)}`);
  }
});

test('overview: the last hour\'s traffic and errors, partners\' backlogs and breakers, dead letters, certificates by expiry, stamping backlog', async () => {
  const asked = Date.now();
  const answer = await call('operator', 'GET', '/api/overview');
  const answered = Date.now();
  assert.is(answer.status, 200, answer.text);
  const overview = answer.body;
  const declarations = overview.traffic.filter((row: any) => row.service === 'customs.declaration' && row.protocol === 'rest');
  assert.is(declarations.reduce((sum: number, row: any) => sum + row.messages, 0), 3);
  assert.ok(overview.errors.some((row: any) => row.service === 'customs.declaration' && row.rejections === 1), JSON.stringify(overview.errors));
  assert.equal(overview.partners.map((partner: any) => [partner.id, partner.breaker]).sort(), [['BOFT', 'closed'], ['CUSTOMS', 'closed']]);
  assert.ok(overview.partners.every((partner: any) => Number.isInteger(partner.backlog) && partner.backlog >= 0));
  assert.ok(Number.isInteger(overview.deadLetters));
  const kinds = new Set(overview.certificates.map((certificate: any) => certificate.kind));
  for (const kind of ['agency', 'hub', 'tsa', 'crl']) assert.ok(kinds.has(kind), `${kind} in ${[...kinds]}`);
  assert.ok(overview.certificates.some((certificate: any) => certificate.subject === 'CUSTOMS' && certificate.kind === 'agency'));
  const days = overview.certificates.map((certificate: any) => certificate.days);
  assert.equal(days, [...days].sort((a: number, b: number) => a - b), 'soonest first');
  for (const certificate of overview.certificates) {
    const daysAt = (now: number) => Math.floor((Date.parse(certificate.notAfter) - now) / 86_400_000);
    assert.ok(certificate.days <= daysAt(asked) && certificate.days >= daysAt(answered), certificate.subject);
  }
  assert.is(overview.stampingBacklog >= 0, true);
  assert.ok(overview.disk.totalBytes > 0 && overview.disk.freeBytes <= overview.disk.totalBytes);
  assert.is((await call('analyst', 'GET', '/api/overview')).status, 200);
  assert.is((await call('auditor', 'GET', '/api/overview')).status, 200);
  await refused('admin', 'GET', '/api/overview');
});

/** The audit entries of one action, as an auditor reads them. */
async function audited(action: string): Promise<any[]> {
  const answer = await call('auditor', 'GET', '/api/audit?limit=10000');
  assert.is(answer.status, 200, answer.text);
  const parse = (text: string) => (text ? JSON.parse(text) : null);
  return answer.body.filter((row: any) => row.action === action).map((row: any) => ({ ...row, before: parse(row.before), after: parse(row.after) }));
}

test('analysis: one read-only SELECT over the statistics tables; refusals carry their SWX_SQL_* code; analysts only', async () => {
  const answer = await call('analyst', 'POST', '/api/analysis/query', { body: { sql: "SELECT service, sumIf(records, stage = 'verified') AS messages FROM stats_daily GROUP BY service ORDER BY service" } });
  assert.is(answer.status, 200, answer.text);
  assert.equal(answer.body.columns, ['service', 'messages']);
  assert.equal(answer.body.rows.find((row: any) => row.service === 'customs.declaration')?.messages, 3);
  assert.ok(answer.body.tables.some((table: string) => table.endsWith('.stats_daily')), answer.body.tables);
  const refusals: [string, number, string][] = [
    ['SELECT * FROM evidence', 403, 'SWX_SQL_TABLE_REFUSED'],
    ['SELECT name FROM system.users', 403, 'SWX_SQL_TABLE_REFUSED'],
    ["INSERT INTO messages (message_id) VALUES ('x')", 400, 'SWX_SQL_NOT_A_QUERY'],
    ['SELECT 1; DROP TABLE messages', 400, 'SWX_SQL_NOT_A_QUERY'],
    ['SELECT number FROM numbers(20000)', 422, 'SWX_SQL_LIMIT'],
    ["SELECT * FROM file('/etc/passwd', 'LineAsString')", 403, ''],
  ];
  for (const [sql, status, code] of refusals) {
    const refusal = await call('analyst', 'POST', '/api/analysis/query', { body: { sql } });
    assert.is(refusal.status, status, `${sql}: ${refusal.text.slice(0, 300)}`);
    if (code) assert.is(refusal.body.code, code, sql);
    else assert.match(refusal.body.code, /^SWX_SQL_/, sql);
  }
  assert.is((await call('analyst', 'POST', '/api/analysis/query', { body: { sql: '' } })).status, 400);
  await refused('operator', 'POST', '/api/analysis/query', { sql: 'SELECT 1' });
  await refused('admin', 'POST', '/api/analysis/query', { sql: 'SELECT 1' });
});

test('panels: a shared dashboard kept with history; each change audited; a panel whose SQL the sandbox refuses is not saved', async () => {
  const panel = { title: 'Messages per service', sql: "SELECT service, sumIf(records, stage = 'verified') AS messages FROM stats_daily GROUP BY service", chart: 'bar' };
  const saved = await call('analyst', 'PUT', '/api/analysis/panels/per-service', { body: panel });
  assert.is(saved.status, 200, saved.text);
  assert.is(saved.body.updatedBy, 'anna');
  const changed = await call('analyst', 'PUT', '/api/analysis/panels/per-service', { body: { ...panel, chart: 'line' }, headers: { 'x-swx-reason': 'trend%20view' } });
  assert.is(changed.status, 200, changed.text);
  const listed = await call('analyst', 'GET', '/api/analysis/panels');
  assert.equal(listed.body.panels.map((p: any) => [p.id, p.title, p.chart]), [['per-service', panel.title, 'line']]);
  const entries = await audited('PUT /api/analysis/panels/:panel');
  assert.is(entries.length, 2);
  assert.is(entries[1].before.chart, 'bar');
  assert.is(entries[1].after.chart, 'line');
  assert.is(entries[1].reason, 'trend view');
  assert.is(entries[1].target, 'analysis/panels/per-service');
  const sneaky = await call('analyst', 'PUT', '/api/analysis/panels/sneaky', { body: { ...panel, sql: 'SELECT raw FROM evidence' } });
  assert.is(sneaky.status, 403);
  assert.is(sneaky.body.code, 'SWX_SQL_TABLE_REFUSED');
  for (const [id, body] of [['Bad Id', panel], ['ok', { ...panel, chart: 'pie' }], ['ok', { ...panel, extra: 1 }]] as const) {
    assert.is((await call('analyst', 'PUT', `/api/analysis/panels/${encodeURIComponent(id)}`, { body })).status, 400, `${id} ${JSON.stringify(body)}`);
  }
  await refused('operator', 'GET', '/api/analysis/panels');
  await refused('auditor', 'PUT', '/api/analysis/panels/per-service', panel);
  await refused('admin', 'DELETE', '/api/analysis/panels/per-service');
  assert.is((await call('analyst', 'DELETE', '/api/analysis/panels/per-service')).status, 200);
  assert.is((await call('analyst', 'DELETE', '/api/analysis/panels/per-service')).status, 404);
  assert.equal((await call('analyst', 'GET', '/api/analysis/panels')).body.panels, []);
  const removal = await audited('DELETE /api/analysis/panels/:panel');
  assert.is(removal.length, 1);
  assert.is(removal[0].before.chart, 'line');
  assert.is(removal[0].after, null);
});

test('alerts: a certificate near expiry, a breaker open, a backlog and missing receipts, published on swx.alerts.<kind> as they start; operators and auditors', async () => {
  const nc = await connect({ servers: `nats://127.0.0.1:${hub.natsPort}` });
  const published: any[] = [];
  const subscription = nc.subscribe('swx.alerts.>', { callback: (_error, message) => { published.push({ subject: message.subject, ...message.json<any>() }); } });
  await nc.flush();
  try {
    // An agency whose certificate ends in 20 days; one whose endpoint refuses connections; one that collects its messages and never does.
    const short = await issueCertificate(join(hub.dataDir, 'pki'), 'SHORTLIVED', { validityDays: 20 });
    assert.is((await hub.admin('PUT', '/api/partners/SHORTLIVED', { name: 'short-lived', certificates: [short.certPem] })).status, 200);
    down = (await issueCertificate(join(hub.dataDir, 'pki'), 'FDA')).certPem;
    assert.is((await hub.admin('PUT', '/api/partners/FDA', { name: 'down', certificates: [down], endpoints: { rest: { url: 'https://localhost:1/inbox' } } })).status, 200);
    await addAgency(hub, 'NTA', { receive: 'pull' });
    await addService(hub, 'tax.notice', ['CUSTOMS'], ['FDA', 'NTA']);
    for (const to of ['FDA', 'FDA', 'NTA']) {
      assert.is((await customs.client.send({ to, service: 'tax.notice', action: 'deliver', contentType: 'application/json', body: Buffer.from('{}') })).status, 202);
    }
    let alerts: any[] = [];
    const holds = (id: string) => alerts.some((alert) => alert.id === id);
    await waitFor('the alerts', async () => {
      const answer = await call('operator', 'GET', '/api/alerts');
      assert.is(answer.status, 200, answer.text);
      alerts = answer.body.alerts;
      return ['certificate-expiry:agency/SHORTLIVED', 'breaker-open:FDA', 'backlog:FDA', 'missing-receipts:NTA'].every(holds);
    }, 30_000);
    const byId = new Map(alerts.map((alert) => [alert.id, alert]));
    assert.is(byId.get('certificate-expiry:agency/SHORTLIVED').severity, 'warning', '20 days: within 30');
    assert.match(byId.get('certificate-expiry:agency/SHORTLIVED').message, /in 1[89] days|in 20 days/);
    assert.is(byId.get('breaker-open:FDA').severity, 'critical');
    assert.match(byId.get('missing-receipts:NTA').message, /^1 messages to NTA/);
    assert.ok(!alerts.some((alert) => alert.kind === 'certificate-expiry' && alert.subject === 'agency/CUSTOMS'), 'a certificate good for a year raises nothing');
    const severities = alerts.map((alert) => alert.severity);
    assert.equal(severities, [...severities].sort((a, b) => ['critical', 'warning', 'info'].indexOf(a) - ['critical', 'warning', 'info'].indexOf(b)));
    // Each started once on NATS, on its kind's subject, with the time it was first seen.
    await waitFor('the published changes', () => ['breaker-open:FDA', 'missing-receipts:NTA'].every((id) => published.some((change) => change.alert.id === id)), 10_000);
    for (const id of ['certificate-expiry:agency/SHORTLIVED', 'breaker-open:FDA', 'missing-receipts:NTA']) {
      const firing = published.filter((change) => change.alert.id === id && change.state === 'firing');
      assert.is(firing.length, 1, id);
      assert.is(firing[0].subject, `swx.alerts.${firing[0].alert.kind}`);
      assert.is(firing[0].alert.since, byId.get(id).since);
    }
    assert.is((await call('auditor', 'GET', '/api/alerts')).status, 200);
    await refused('analyst', 'GET', '/api/alerts');
    await refused('admin', 'GET', '/api/alerts');
  } finally {
    subscription.unsubscribe();
    await nc.close();
  }
});

test('the Prometheus rule file: valid YAML (read by PyYAML), one rule per condition over metrics the hub exposes, the same from the CLI', async () => {
  const answer = await call('operator', 'GET', '/api/alerts/rules');
  assert.is(answer.status, 200, answer.text);
  assert.match(String(answer.headers['content-type']), /^application\/yaml/);
  const parsed = await new Promise<any>((resolve, reject) => {
    const child = execFile('python3', ['-c', 'import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], (error, out) => (error ? reject(error) : resolve(JSON.parse(out))));
    child.stdin!.end(answer.text);
  });
  assert.is(parsed.groups.length, 1);
  const rules = parsed.groups[0].rules as any[];
  assert.equal(rules.map((rule) => rule.alert).sort(), [
    'SwxCertificateExpiresIn30Days', 'SwxCertificateExpiresIn60Days', 'SwxCertificateExpiresIn7Days', 'SwxDataDiskFilling', 'SwxDataDiskFull',
    'SwxDeliveryBacklog', 'SwxMissingReceipts', 'SwxPartnerCircuitOpen', 'SwxTimeStampingBacklog',
  ]);
  const exposed = await (await fetch(`http://127.0.0.1:${hub.opsPort}/metrics`)).text();
  for (const rule of rules) {
    assert.ok(['info', 'warning', 'critical'].includes(rule.labels.severity), rule.alert);
    assert.match(rule.for, /^\d+[smh]$/);
    assert.ok(rule.annotations.summary.length > 0);
    for (const metric of rule.expr.match(/swx_[a-z_]+/g)) assert.ok(exposed.includes(`# TYPE ${metric} `), `${rule.alert}: ${metric} is exposed`);
  }
  assert.ok(rules.find((rule) => rule.alert === 'SwxDeliveryBacklog').expr.endsWith('> 1'), 'with this hub\'s threshold');
  const cli = await swxCommand(['alerts', 'rules', '--data', hub.dataDir], alertEnv);
  assert.is(cli.code, 0, cli.stderr);
  assert.is(cli.stdout, answer.text);
  await refused('analyst', 'GET', '/api/alerts/rules');
});

test('runtime settings: kept with history, applied while running, the runtime value winning over the start-up one until reset; admins only', async () => {
  const listed = await call('admin', 'GET', '/api/settings/runtime');
  assert.is(listed.status, 200, listed.text);
  const rows = listed.body.settings;
  const row = (name: string) => rows.find((entry: any) => entry.name === name);
  assert.equal(rows.map((entry: any) => entry.name), ['logLevel', 'retentionDays', 'tsaGraceSeconds', 'maxUnstampedRecords', 'analysisMaxExecutionSeconds', 'analysisMaxResultRows']);
  assert.equal([row('logLevel').value, row('logLevel').source], ['warn', 'startup']);
  const query = { sql: 'SELECT number FROM numbers(10)' };
  assert.is((await call('analyst', 'POST', '/api/analysis/query', { body: query })).status, 200);
  const lowered = await call('admin', 'PUT', '/api/settings/runtime/analysisMaxResultRows', { body: { value: 5 }, headers: { 'x-swx-reason': 'ad-hoc%20limits' } });
  assert.is(lowered.status, 200, lowered.text);
  assert.equal([lowered.body.value, lowered.body.source, lowered.body.startup, lowered.body.updatedBy], [5, 'runtime', 10_000, 'ada']);
  const limited = await call('analyst', 'POST', '/api/analysis/query', { body: query });
  assert.is(limited.status, 422, limited.text);
  assert.is(limited.body.code, 'SWX_SQL_LIMIT');
  assert.is((await call('admin', 'PUT', '/api/settings/runtime/analysisMaxResultRows', { body: { value: null } })).body.source, 'startup');
  assert.is((await call('analyst', 'POST', '/api/analysis/query', { body: query })).status, 200);
  const history = await call('admin', 'GET', '/api/settings/runtime/analysisMaxResultRows/history');
  assert.is(history.status, 200, history.text);
  assert.equal(history.body.revisions.map((revision: any) => [revision.operation, revision.value?.value]), [['PUT', 5], ['DEL', undefined]]);
  const entries = await audited('PUT /api/settings/runtime/:name');
  assert.is(entries.length, 2);
  assert.equal([entries[0].before.source, entries[0].after.value, entries[0].reason], ['startup', 5, 'ad-hoc limits']);
  assert.is((await call('admin', 'PUT', '/api/settings/runtime/logLevel', { body: { value: 'debug' } })).body.value, 'debug');
  assert.is((await call('admin', 'PUT', '/api/settings/runtime/logLevel', { body: { value: null } })).body.value, 'warn');
  for (const [name, value] of [['logLevel', 'loud'], ['retentionDays', 0], ['tsaGraceSeconds', 'soon'], ['weather', 1]] as const) {
    const answer = await call('admin', 'PUT', `/api/settings/runtime/${name}`, { body: { value } });
    assert.is(answer.status, 400, `${name}=${value}: ${answer.text.slice(0, 200)}`);
  }
  await refused('operator', 'GET', '/api/settings/runtime');
  await refused('analyst', 'PUT', '/api/settings/runtime/logLevel', { value: 'debug' });
  await refused('auditor', 'GET', '/api/settings/runtime/logLevel/history');
});

test('dead letters: a preview of what a filter matches, then its resend with a required reason, keeping or renewing the ids, audited', async () => {
  // FDA removed: the deliveries waiting for it are dead-lettered.
  assert.is((await hub.admin('DELETE', '/api/partners/FDA')).status, 200);
  let preview: Answer | undefined;
  await waitFor('FDA\'s dead letters', async () => {
    preview = await call('operator', 'POST', '/api/dlq/preview', { body: { filter: { to: 'FDA' } } });
    return preview.status === 200 && preview.body.count === 2;
  }, 30_000);
  assert.is(preview!.body.sample.length, 2);
  assert.ok(preview!.body.sample.every((letter: any) => letter.to === 'FDA' && letter.from === 'CUSTOMS' && letter.service === 'tax.notice'));
  assert.is((await call('operator', 'POST', '/api/dlq/preview', { body: { filter: { to: 'NTA' } } })).body.count, 0);
  const [first, second] = preview!.body.sample;
  // Back, still unreachable: resent letters wait in its lane rather than dead-letter again.
  assert.is((await hub.admin('PUT', '/api/partners/FDA', { name: 'down', certificates: [down], endpoints: { rest: { url: 'https://localhost:1/inbox' } } })).status, 200);
  const noReason = await call('operator', 'POST', '/api/dlq/resend', { body: { filter: { to: 'FDA' } } });
  assert.is(noReason.status, 400, noReason.text);
  const kept = await call('operator', 'POST', '/api/dlq/resend', { body: { filter: { messageId: first.messageId }, reason: 'FDA fixed its certificate' } });
  assert.is(kept.status, 200, kept.text);
  assert.equal(kept.body.letters, [{ seq: first.seq, messageId: first.messageId }]);
  const renewed = await call('operator', 'POST', '/api/dlq/resend', { body: { filter: { to: 'FDA' }, reason: 'receiver asks for fresh ids', messageId: 'renew' } });
  assert.is(renewed.status, 200, renewed.text);
  assert.is(renewed.body.resent, 1);
  const [fresh] = renewed.body.letters;
  assert.is(fresh.renewedFrom, second.messageId);
  assert.ok(fresh.messageId !== second.messageId && /^[0-9a-f-]{36}$/.test(fresh.messageId));
  assert.is((await call('operator', 'POST', '/api/dlq/preview', { body: { filter: { to: 'FDA' } } })).body.count, 0);
  const record = (await evidenceOf(hub, fresh.messageId, 'resent')).find((row: any) => row.stage === 'resent');
  assert.ok(record, 'the renewed message has its resent record');
  assert.match(record.detail, new RegExp(`renewed from message id ${second.messageId}.*reason: receiver asks for fresh ids`));
  const entries = await audited('POST /api/dlq/resend');
  assert.is(entries.length, 2);
  assert.equal([entries[1].after.messageId, entries[1].after.resent, entries[1].after.reason], ['renew', 1, 'receiver asks for fresh ids']);
  await refused('auditor', 'POST', '/api/dlq/preview', { filter: {} });
  await refused('analyst', 'POST', '/api/dlq/resend', { filter: {}, reason: 'no' });
});

test.run();
