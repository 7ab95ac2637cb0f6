// The console's web pages in a real browser (Debian's chromium, driven by playwright-core) against a real hub over its
// HTTPS console port: signing in and the refusals, finding a message just sent and its timeline and evidence, the
// bundle downloaded and checked by `swx evidence verify`, a partner added, an access rule changed and taking effect,
// statistics and an analyst's query, an XSS payload shown as text on every page, a cookie replayed after sign-out
// refused, axe-core's verdict on every page, and screenshots of every page in both languages (test-output/screenshots).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addAgency, addService, cleanEnv, root, startHubProcess, swxBin, tempDir, waitFor, type HubProcess, type TestAgency } from '../helpers/hub.ts';
import { consoleRequest, roleTokens, testPassword, userOf } from '../helpers/console.ts';
import { contentSecurityPolicy, pageLanguage } from '../../dashboards/pages.ts';

const shots = join(root, 'test-output', 'screenshots');
const xss = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>"\'&';
const everyRole = { name: 'root', password: 'root-password-for-tests' };

let hub: HubProcess;
let browser: Browser;
let customs: TestAgency;
let boft: TestAgency;
let nta: TestAgency;
let sentId = '';
let tokens: Awaited<ReturnType<typeof roleTokens>>;
const work = tempDir('console-web');

interface Opened { context: BrowserContext; page: Page; problems: string[] }

/** A browser context as a user in one language; every script error, CSP violation and dialog is a problem. */
async function openBrowser(locale: 'en-US' | 'zh-TW', viewport = { width: 1280, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ locale, viewport, ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`); });
  page.on('dialog', (dialog) => { problems.push(`dialog: ${dialog.message()}`); void dialog.dismiss(); });
  return { context, page, problems };
}

const base = () => `https://localhost:${hub.consolePort}`;

async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(`${base()}/`);
  await page.locator('input[name=user]').fill(user);
  await page.locator('input[name=password]').fill(password);
  await page.keyboard.press('Enter');
}

/** Opens a page of the console and waits until nothing on it is loading. */
async function show(page: Page, id: string, params = ''): Promise<void> {
  await page.goto(`${base()}/#/${id}${params ? `?${params}` : ''}`);
  await page.locator(`.page[data-page="${id}"], #content .error`).first().waitFor();
  await page.waitForFunction(() => !document.querySelector('.busy'));
}

/** axe-core's serious and critical findings on the page as it is. */
async function accessibilityFindings(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an injected script tag.
  if (!await page.evaluate(() => 'axe' in window)) await page.evaluate(readFileSync(join(root, 'node_modules/axe-core/axe.min.js'), 'utf8'));
  const result = await page.evaluate(async () => (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe.run());
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`);
}

function swx(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const done = spawnSync(process.execPath, [swxBin, ...args], { env: { ...cleanEnv(), SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}` }, encoding: 'utf8', timeout: 60_000 });
  return { code: done.status, stdout: done.stdout, stderr: done.stderr };
}

test.before(async () => {
  mkdirSync(shots, { recursive: true });
  hub = await startHubProcess({ env: { SWX_STAMP_INTERVAL_MS: '200', SWX_DELIVERY_MAX_ATTEMPTS: '1' } });
  tokens = await roleTokens(hub);
  const made = await hub.admin('PUT', `/api/users/${everyRole.name}`, { roles: ['admin', 'operator', 'auditor', 'analyst'], password: everyRole.password });
  assert.is(made.status, 200, JSON.stringify(made.body));
  customs = await addAgency(hub, 'CUSTOMS');
  boft = await addAgency(hub, 'BOFT', { provider: { answer: (_dataset, keys) => ({ permit: keys.permitNo, status: 'issued' }) } });
  nta = await addAgency(hub, 'NTA', { receiver: false });
  await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
  const dataset = await hub.admin('PUT', '/api/catalogue/export-permit', {
    name: 'Export permits', nameZh: '輸出許可證', service: { id: 'trade-permits', name: 'Trade permits', nameZh: '貿易許可' },
    keys: ['permitNo'], askers: ['CUSTOMS'], providers: ['BOFT'],
  });
  assert.is(dataset.status, 200, JSON.stringify(dataset.body));
  const topic = await hub.admin('PUT', '/api/topics/rice-inspection', { name: 'Rice inspection', nameZh: '稻米檢驗', notifiers: ['CUSTOMS'], receivers: ['BOFT'] });
  assert.is(topic.status, 200, JSON.stringify(topic.body));
  const answer = await customs.client.send({ to: 'BOFT', service: 'customs.declaration', action: 'import-declaration', contentType: 'application/json', body: Buffer.from('{"declarationNo":"AA/BE/13/101/00002"}') });
  assert.is(answer.status, 202, JSON.stringify(answer.body));
  sentId = String(answer.body.id);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
});

test.after(async () => {
  await browser?.close();
  for (const agency of [customs, boft, nta]) { agency?.client.close(); await agency?.receiver?.close(); await agency?.provider?.close(); }
  await hub?.stop();
});

test('the page is served with a strict CSP, no inline script, its language from Accept-Language', async () => {
  const served = await consoleRequest(hub, 'GET', '/', { headers: { 'accept-language': 'en-GB,en;q=0.9,zh-TW;q=0.5' } });
  assert.is(served.status, 200);
  assert.is(served.headers['content-security-policy'], contentSecurityPolicy);
  assert.match(contentSecurityPolicy, "script-src 'self'");
  assert.not.match(contentSecurityPolicy, 'unsafe');
  assert.match(served.text, '<html lang="en">');
  assert.not.match(served.text.replace(/<script type="module" src="\/console\/console.js"><\/script>/, ''), /<script|<style|\sstyle=|\son[a-z]+=/i);
  assert.is(pageLanguage('zh-TW,zh;q=0.9'), 'zh-TW');
  assert.is(pageLanguage('fr-FR, en;q=0.3'), 'en');
  assert.is(pageLanguage('en;q=0.2, zh;q=0.8'), 'zh-TW');
  assert.is(pageLanguage(undefined), 'zh-TW');
  const script = await consoleRequest(hub, 'GET', '/console/console.js');
  assert.is(script.status, 200);
  assert.match(String(script.headers['content-type']), 'text/javascript');
  assert.not.match(script.text, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, 'the page scripts never parse text as HTML');
  assert.is((await consoleRequest(hub, 'GET', '/console/nothing.js')).status, 404);
});

test('a wrong password is refused on the page; the right one signs in, by keyboard alone', async () => {
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, userOf.operator, 'not-the-password');
  await page.getByRole('alert').filter({ hasText: 'SWX_CONSOLE_UNAUTHORIZED' }).waitFor();
  assert.is(await page.locator('nav').count(), 0);
  await page.screenshot({ path: join(shots, 'en-sign-in-refused.png') });
  // Keyboard only: the user field has focus, Tab moves to the password, Enter submits.
  await page.locator('input[name=user]').fill('');
  await page.locator('input[name=user]').focus();
  await page.keyboard.type(userOf.operator);
  await page.keyboard.press('Tab');
  await page.keyboard.type(testPassword('operator'));
  await page.keyboard.press('Enter');
  await page.locator('nav').waitFor();
  const links = await page.locator('nav a').allTextContents();
  assert.ok(links.includes('Partners') && links.includes('Messages'), links.join(','));
  assert.not.ok(links.includes('Users') || links.includes('Audit'), `an operator sees no admin or auditor page: ${links.join(',')}`);
  // The skip link is the first stop of Tab and takes focus to the content.
  await page.keyboard.press('Tab');
  assert.is(await page.evaluate(() => document.activeElement?.className), 'skip');
  await page.keyboard.press('Enter');
  assert.is(await page.evaluate(() => document.activeElement?.id), 'content');
  assert.equal(problems, []);
  await context.close();
});

test('a page the role does not allow says so, and its route is refused 403 SWX_ROLE_DENIED', async () => {
  const { context, page } = await openBrowser('en-US');
  await signIn(page, userOf.analyst, testPassword('analyst'));
  await page.locator('nav').waitFor();
  await page.goto(`${base()}/#/users`);
  await page.getByRole('alert').filter({ hasText: 'Your role does not allow this page.' }).waitFor();
  const refused = await page.evaluate(async () => { const r = await fetch('/api/users'); return { status: r.status, body: await r.json() }; });
  assert.is(refused.status, 403);
  assert.is(refused.body.code, 'SWX_ROLE_DENIED');
  await context.close();
});

test('an operator finds the message just sent by its id, opens its timeline and the link to its evidence', async () => {
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, everyRole.name, everyRole.password);
  await page.locator('nav').waitFor();
  // The search tables are filled as the archive writes: wait for the row, searching as the page does.
  await waitFor('the message in the search', async () => (await consoleRequest(hub, 'GET', `/api/messages?key=${sentId}`, { bearer: tokens.operator })).body.rows?.length > 0, 30_000);
  await show(page, 'messages');
  await page.getByLabel('Any id (message, conversation, reference)').fill(sentId);
  await page.getByRole('button', { name: 'Search' }).click();
  const found = page.getByRole('link', { name: sentId, exact: true });
  await found.waitFor();
  const row = page.locator('tr', { has: found });
  assert.match(await row.textContent() ?? '', 'CUSTOMS');
  await found.click();
  await page.getByRole('heading', { name: `Timeline: ${sentId}` }).waitFor();
  await page.waitForFunction(() => !document.querySelector('.busy'));
  const stages = await page.locator('section table tbody tr td:nth-child(2)').allTextContents();
  assert.ok(stages.includes('received') && stages.includes('verified'), stages.join(','));
  await page.getByRole('link', { name: `Evidence: ${sentId}` }).click();
  await page.locator('.page[data-page="evidence"] table').waitFor();
  assert.ok((await page.locator('tbody tr').count()) >= 2);
  assert.equal(problems, []);
  await context.close();
});

test('an operator resends a dead letter from the Messages page, giving a reason; its evidence says resent', async () => {
  // NTA's receiver refuses everything with 422: with one attempt allowed (SWX_DELIVERY_MAX_ATTEMPTS), a dead letter at once.
  const refusing = createServer({ cert: nta.credentials.certPem, key: nta.credentials.keyPem }, (_req, res) => { res.writeHead(422); res.end('notice format not supported'); });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  try {
    const registered = await hub.admin('PUT', '/api/partners/NTA', { name: 'NTA (test)', certificates: [nta.credentials.certPem], endpoints: { rest: { url: `https://localhost:${(refusing.address() as { port: number }).port}/inbox` } } });
    assert.is(registered.status, 200, JSON.stringify(registered.body));
    await addService(hub, 'customs.notice', ['CUSTOMS'], ['NTA']);
    const sent = await customs.client.send({ to: 'NTA', service: 'customs.notice', action: 'notice', contentType: 'application/json', body: Buffer.from('{"notice":1}') });
    assert.is(sent.status, 202, JSON.stringify(sent.body));
    const id = String(sent.body.id);
    let letters: { seq: number; messageId?: string }[] = [];
    await waitFor('the delivery NTA refused dead-lettered', async () => {
      letters = (await hub.admin('GET', '/api/dlq?limit=100')).body;
      return letters.some((letter) => letter.messageId === id);
    }, 30_000);
    const seq = letters.find((letter) => letter.messageId === id)!.seq;
    const { context, page, problems } = await openBrowser('en-US');
    await signIn(page, userOf.operator, testPassword('operator'));
    await page.locator('nav').waitFor();
    await show(page, 'messages');
    assert.ok(await page.getByRole('button', { name: 'Resend', exact: true }).isDisabled(), 'the filter resend waits for a preview');
    await page.getByRole('button', { name: `Resend ${seq}` }).click();
    await page.getByRole('alert').filter({ hasText: 'Reason (required): missing' }).waitFor();
    assert.ok(await page.getByRole('textbox', { name: 'Reason (required)' }).evaluate((input) => document.activeElement === input), 'no reason: the field is asked for');
    await page.getByRole('textbox', { name: 'Reason (required)' }).fill('NTA endpoint registered again');
    await page.getByRole('button', { name: `Resend ${seq}` }).click();
    await page.getByRole('status').filter({ hasText: `Resent: ${id}` }).waitFor();
    // Refused again (the receiver still says 422), it is a dead letter again: resent in bulk after a preview, renewed.
    await waitFor('dead-lettered again', async () => (await hub.admin('GET', '/api/dlq?limit=100')).body.some((letter: { messageId?: string }) => letter.messageId === id), 30_000);
    await page.getByLabel('Filter (JSON)').fill('{"to":"NTA"}');
    await page.getByRole('button', { name: 'Preview resend' }).click();
    await page.getByRole('status').filter({ hasText: 'Messages matched: 1' }).waitFor();
    await page.getByLabel('Message id').selectOption('renew');
    await page.getByRole('button', { name: 'Resend', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Resent: 1' }).waitFor();
    assert.match(await page.locator('table', { has: page.locator('caption', { hasText: 'Resent' }) }).textContent() ?? '', id);
    await waitFor('the resent record', async () => (await consoleRequest(hub, 'GET', `/api/evidence?messageId=${encodeURIComponent(id)}`, { bearer: tokens.auditor })).body.some((row: { stage: string }) => row.stage === 'resent'), 15_000);
    const audit = await consoleRequest(hub, 'GET', '/api/audit?limit=1000', { bearer: tokens.auditor });
    assert.ok(audit.body.some((entry: { action: string; reason: string }) => entry.action === 'POST /api/dlq/:seq/resend' && entry.reason === 'NTA endpoint registered again'));
    assert.equal(problems, []);
    await context.close();
  } finally {
    refusing.closeAllConnections();
    refusing.close();
  }
});

test('an auditor downloads the bundle, which swx evidence verify accepts pinned to the CA, and verifies it in place', async () => {
  const { context, page, problems } = await openBrowser('zh-TW');
  await signIn(page, userOf.auditor, testPassword('auditor'));
  await page.locator('nav').waitFor();
  await waitFor('the message time-stamped', async () => {
    const rows = (await consoleRequest(hub, 'GET', `/api/evidence?messageId=${sentId}`, { bearer: tokens.auditor })).body as { stage: string; stamped_at: string }[];
    return rows.some((row) => row.stage === 'delivered') && rows.every((row) => row.stamped_at !== '');
  }, 30_000);
  await show(page, 'evidence', `messageId=${sentId}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: '下載存證包' }).click()]);
  const saved = join(work, 'bundle.tar');
  await download.saveAs(saved);
  const verdict = swx(['evidence', 'verify', saved, '--trusted', join(hub.dataDir, 'pki/ca/cert.pem')]);
  assert.is(verdict.code, 0, verdict.stdout + verdict.stderr);
  assert.is(JSON.parse(verdict.stdout).trust, 'pinned');
  await page.getByRole('button', { name: '驗證存證包' }).click();
  await page.getByRole('status').filter({ hasText: '驗證結果：有效' }).or(page.getByRole('status').filter({ hasText: '驗證結果: 有效' })).waitFor();
  assert.equal(problems, []);
  await context.close();
});

test('an operator adds a partner whose name is an XSS payload: every page shows it as text and runs nothing', async () => {
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, everyRole.name, everyRole.password);
  await page.locator('nav').waitFor();
  const cert = swx(['pki', 'issue', 'EVIL', '--data', hub.dataDir]);
  assert.is(cert.code, 0, cert.stderr);
  await show(page, 'partners');
  await page.getByLabel('Partner id').fill('EVIL');
  await page.getByLabel('Name').fill(xss);
  await page.getByLabel('Certificates (PEM)').fill(readFileSync(join(hub.dataDir, 'pki/agencies/EVIL/cert.pem'), 'utf8'));
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: `EVIL — ${xss}` }).waitFor();
  const stored = await hub.admin('GET', '/api/partners/EVIL');
  assert.is(stored.body.name, xss);
  await show(page, 'partners');
  assert.is(await page.getByRole('cell', { name: xss, exact: true }).count(), 1, 'the name is shown as the characters it is');
  for (const id of ['overview', 'messages', 'partners', 'access', 'evidence', 'statistics', 'analysis', 'alerts', 'settings', 'audit', 'users']) {
    await show(page, id, id === 'partners' ? 'id=EVIL' : id === 'evidence' ? 'partner=EVIL' : '');
    assert.is(await page.locator('#app img').count(), 0, `${id}: no element made from the payload`);
    assert.is(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, `${id}: the payload ran`);
    // The partner's page shows its history, the entry's JSON as text with the payload in it.
    if (id === 'partners') assert.ok(await page.locator('pre', { hasText: '<script>window.__xss=2</script>' }).count() >= 1, 'the history shows the name as text');
  }
  assert.equal(problems, []);
  await context.close();
});

test('an access rule changed in the Table 1 matrix takes effect: NTA may ask for export permits only after', async () => {
  const before = await nta.client.query('export-permit', { permitNo: 'EP-1' });
  assert.is(before.status, 403, JSON.stringify(before.body));
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, userOf.operator, testPassword('operator'));
  await page.locator('nav').waitFor();
  await show(page, 'access');
  await page.getByLabel('Reason', { exact: true }).fill('NTA checks export permits from today');
  const cell = page.getByRole('checkbox', { name: 'NTA asks export-permit' });
  assert.is(await cell.isChecked(), false);
  await cell.check();
  await page.getByRole('status').filter({ hasText: 'Saved. catalogue/export-permit' }).waitFor();
  const dataset = await hub.admin('GET', '/api/catalogue/export-permit');
  assert.equal(dataset.body.askers, ['CUSTOMS', 'NTA']);
  await waitFor('NTA answered', async () => (await nta.client.query('export-permit', { permitNo: 'EP-1' })).status === 200, 15_000);
  const audit = await consoleRequest(hub, 'GET', '/api/audit?limit=1000', { bearer: tokens.auditor });
  assert.ok(audit.body.some((entry: { action: string; reason: string; actor: string }) => entry.action === 'PUT /api/catalogue/:dataset' && entry.reason === 'NTA checks export permits from today' && entry.actor === userOf.operator));
  assert.equal(problems, []);
  await context.close();
});

test('an analyst reads the traffic chart: its series hold the message sent; the rows export as CSV', async () => {
  await waitFor('the message in the statistics', async () => {
    const rows = (await consoleRequest(hub, 'GET', '/api/stats/traffic?grain=hour', { bearer: tokens.analyst })).body.rows as { messages: number }[] | undefined;
    return (rows ?? []).reduce((sum, row) => sum + row.messages, 0) >= 1;
  }, 30_000);
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, userOf.analyst, testPassword('analyst'));
  await page.locator('nav').waitFor();
  await show(page, 'statistics', 'kind=traffic&grain=hour&by=service');
  await page.locator('.chart[data-drawn]').waitFor();
  // The chart as ECharts holds it: one series per service split, the declaration among them.
  const series = await page.evaluate(() => {
    const box = document.querySelector('.chart')!;
    const option = (window as unknown as { echarts: { getInstanceByDom(el: Element): { getOption(): { series: { name: string; data: number[] }[] } } } }).echarts.getInstanceByDom(box).getOption();
    return option.series.map((entry) => ({ name: entry.name, total: entry.data.reduce((sum, value) => sum + value, 0) }));
  });
  assert.ok(series.some((entry) => entry.name === 'customs.declaration' && entry.total >= 1), JSON.stringify(series));
  assert.ok(await page.locator('.chart canvas').count() >= 1, 'drawn on a canvas');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV (Statistics)' }).click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.match(csv.split(/\r?\n/)[0]!, /^bucket,service,/);
  assert.match(csv, 'customs.declaration');
  assert.equal(problems, []);
  await context.close();
});

test('an analyst runs a query, charts it and saves it as a panel; an over-limit query is refused with its code', async () => {
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, userOf.analyst, testPassword('analyst'));
  await page.locator('nav').waitFor();
  await show(page, 'analysis');
  const sql = page.getByLabel('SQL (one SELECT)');
  await sql.fill('SELECT service, count() AS messages FROM messages GROUP BY service ORDER BY service');
  await page.getByRole('button', { name: 'Run' }).click();
  const row = page.locator('tr', { has: page.getByRole('cell', { name: 'customs.declaration', exact: true }) });
  await row.waitFor();
  assert.ok(Number(await row.locator('td').nth(1).textContent()) >= 1);
  await page.getByLabel('Show as').first().selectOption('bar');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('.chart[data-drawn]').waitFor();
  await page.getByLabel('Panel name').fill('messages-by-service');
  await page.getByLabel('Name', { exact: true }).fill('Messages by service');
  await page.getByRole('button', { name: 'Save as panel' }).click();
  await page.getByRole('button', { name: 'Open messages-by-service' }).waitFor();
  const panel = await consoleRequest(hub, 'GET', '/api/analysis/panels', { bearer: tokens.analyst });
  assert.ok(panel.body.panels.some((entry: { id: string; chart: string; updatedBy: string }) => entry.id === 'messages-by-service' && entry.chart === 'bar' && entry.updatedBy === userOf.analyst));
  await sql.fill('SELECT number FROM numbers(20000)');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('alert').filter({ hasText: 'SWX_SQL_LIMIT' }).waitFor();
  await sql.fill('SELECT * FROM audit');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('alert').filter({ hasText: 'SWX_SQL_TABLE_REFUSED' }).waitFor();
  assert.equal(problems, []);
  await context.close();
});

test('an admin changes a runtime setting on the Settings page and it takes effect: the sandbox\'s row limit', async () => {
  const asked = () => consoleRequest(hub, 'POST', '/api/analysis/query', { bearer: tokens.analyst, body: { sql: 'SELECT number FROM numbers(500)' } });
  assert.is((await asked()).status, 200);
  const { context, page, problems } = await openBrowser('en-US');
  await signIn(page, userOf.admin, testPassword('admin'));
  await page.locator('nav').waitFor();
  await show(page, 'settings');
  await page.getByLabel('Value analysisMaxResultRows').fill('100');
  await page.getByRole('form', { name: 'analysisMaxResultRows' }).getByRole('button', { name: 'Save' }).click();
  await page.locator('tr', { has: page.getByRole('cell', { name: 'analysisMaxResultRows', exact: true }) }).getByRole('cell', { name: 'runtime', exact: true }).waitFor();
  await waitFor('the limit applied', async () => (await asked()).body.code === 'SWX_SQL_LIMIT', 15_000);
  await page.getByRole('button', { name: 'History analysisMaxResultRows' }).click();
  await page.getByRole('table', { name: 'History analysisMaxResultRows' }).waitFor();
  // Emptied, the setting returns to its start-up value.
  await page.getByLabel('Value analysisMaxResultRows').fill('');
  await page.getByRole('form', { name: 'analysisMaxResultRows' }).getByRole('button', { name: 'Save' }).click();
  await waitFor('the limit reset', async () => (await asked()).status === 200, 15_000);
  assert.equal(problems, []);
  await context.close();
});

test('changes made without the CSRF token are refused; a session cookie replayed after sign-out is refused', async () => {
  const { context, page } = await openBrowser('en-US');
  await signIn(page, userOf.operator, testPassword('operator'));
  await page.locator('nav').waitFor();
  const refused = await page.evaluate(async () => {
    const r = await fetch('/api/topics/rice-inspection', { method: 'DELETE' });
    return { status: r.status, body: await r.json() };
  });
  assert.is(refused.status, 403);
  assert.is(refused.body.code, 'SWX_CSRF_REFUSED');
  assert.is((await hub.admin('GET', '/api/topics/rice-inspection')).status, 200, 'the topic is still there');
  const cookie = (await context.cookies()).find((entry) => entry.name === '__Host-swx-session');
  assert.ok(cookie?.secure && cookie.httpOnly && cookie.sameSite === 'Strict');
  const jar = new Map([[cookie.name, cookie.value]]);
  assert.is((await consoleRequest(hub, 'GET', '/api/session', { jar })).status, 200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('form.sign-in').waitFor();
  const replayed = await consoleRequest(hub, 'GET', '/api/partners', { jar });
  assert.is(replayed.status, 401);
  assert.is(replayed.body.code, 'SWX_CONSOLE_UNAUTHORIZED');
  await context.close();
});

test('the language switch overrides Accept-Language and is remembered', async () => {
  const { context, page } = await openBrowser('zh-TW');
  await signIn(page, userOf.operator, testPassword('operator'));
  await page.getByRole('link', { name: '交換機關' }).waitFor();
  await page.getByLabel('語言').selectOption('en');
  await page.getByRole('link', { name: 'Partners' }).waitFor();
  await page.reload();
  await page.getByRole('link', { name: 'Partners' }).waitFor();
  assert.is(await page.evaluate(() => document.documentElement.lang), 'en');
  await context.close();
});

test('every page, in both languages, at 1280×800 and on a narrow screen: no serious or critical axe finding; screenshots saved', async () => {
  for (const locale of ['zh-TW', 'en-US'] as const) {
    const lang = locale === 'en-US' ? 'en' : 'zh-TW';
    const { context, page, problems } = await openBrowser(locale);
    await page.goto(`${base()}/`);
    await page.locator('form.sign-in').waitFor();
    assert.equal(await accessibilityFindings(page), [], `${lang} sign-in`);
    await page.screenshot({ path: join(shots, `${lang}-sign-in.png`) });
    await signIn(page, everyRole.name, everyRole.password);
    await page.locator('nav').waitFor();
    const ids = (await page.locator('nav a').evaluateAll((links) => links.map((link) => link.getAttribute('href')!.replace('#/', ''))));
    assert.is(ids.length, 11, ids.join(','));
    for (const id of ids) {
      await show(page, id, id === 'messages' ? `key=${sentId}&searched=1&timeline=${sentId}` : id === 'evidence' ? `messageId=${sentId}` : id === 'partners' ? 'id=CUSTOMS' : '');
      assert.equal(await accessibilityFindings(page), [], `${lang} ${id}`);
      // A part may only fail for a route this hub lacks, and then it names the route.
      for (const failed of await page.locator('#content .error').allTextContents()) assert.match(failed, /(does not serve the route|未提供本區所需的介面).*(GET|POST|PUT) \/api\//, `${lang} ${id}: ${failed}`);
      await page.screenshot({ path: join(shots, `${lang}-${id}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    for (const id of ['messages', 'access']) {
      await show(page, id);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${lang} ${id} fits a narrow screen`);
      await page.screenshot({ path: join(shots, `${lang}-${id}-narrow.png`) });
    }
    assert.equal(problems, [], `${lang}: ${problems.join('\n')}`);
    await context.close();
  }
});

test.run();
