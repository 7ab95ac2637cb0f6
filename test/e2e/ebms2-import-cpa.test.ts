// `swx partner import-cpa` as an operator runs it, against a running hub: every CPA of the conformance folder registers
// its other party as a partner with the agreement's certificates and an ebms2 endpoint, each checked against facts read
// from the agreement by hand; the registry refuses an ebms2 endpoint that does not fit, and an agreement without a
// certificate needs one given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHubProcess, swxCommand, type HubProcess } from '../helpers/hub.ts';

const cpaFolder = fileURLToPath(new URL('../../../shared/conformance/cpa/', import.meta.url));

let hub: HubProcess;
let admin: NodeJS.ProcessEnv;

const swx = (args: string[]) => swxCommand(args, admin);

async function imported(args: string[]) {
  const result = await swx(['partner', 'import-cpa', ...args]);
  assert.is(result.code, 0, result.stderr);
  const partner = JSON.parse(result.stdout);
  const shown = JSON.parse((await swx(['partner', 'show', partner.id])).stdout);
  assert.equal(shown, partner, 'the hub stored what it answered');
  return partner;
}

async function issued(name: string): Promise<string> {
  const result = await swx(['pki', 'issue', name, '--data', hub.dataDir]);
  assert.is(result.code, 0, result.stderr);
  return JSON.parse(result.stdout).certPath as string;
}

test.before(async () => {
  hub = await startHubProcess();
  admin = { SWX_ADMIN_URL: `http://127.0.0.1:${hub.opsPort}`, SWX_DATA: hub.dataDir };
});

test.after(async () => {
  await hub?.stop();
});

test('nav-qass-35065: the partner by its HER id, its CPA certificates, channels with reliability and signing', async () => {
  const partner = await imported([`${cpaFolder}nav-qass-35065.xml`, '--party', '8141253']);
  assert.is(partner.id, 'HER-8141253');
  assert.is(partner.name, 'SPEARE AS, flytitnhndevelop');
  const subjects = partner.certificates.map((pem: string) => new X509Certificate(pem).subject);
  assert.ok(partner.certificates.length >= 1 && subjects.every((subject: string) => /SPEARE|flytit|O=/.test(subject)), subjects.join(' | '));
  const endpoint = partner.endpoints.ebms2;
  assert.is(endpoint.cpaId, 'nav:qass:35065');
  assert.equal(endpoint.agreement, { status: 'proposed', start: '2025-09-29T13:33:28Z', end: '2028-01-02T22:59:00Z' });
  assert.equal(endpoint.partyIds, [{ id: '8141253', type: 'HER' }, { id: '123456789', type: 'orgnummer' }, { id: '123456789', type: 'ENH' }]);
  assert.equal(endpoint.roles.sort(), ['Behandler', 'Lege', 'Sykmelder']);
  assert.is(endpoint.url, 'mailto://example@example.com');
  assert.is(endpoint.defaultChannel, 'Partner_channelSMTP0_partner');
  const smtp = endpoint.channels.Partner_channelSMTP0_partner;
  assert.equal(smtp, {
    transport: 'SMTP', url: 'mailto://example@example.com', syncReplyMode: 'none',
    ackRequested: 'always', ackSignatureRequested: 'perMessage', duplicateElimination: 'perMessage',
    reliability: { retries: 4, retryIntervalMs: 720 * 60_000, persistDurationMs: 4 * 86_400_000, messageOrder: 'NotGuaranteed' },
    signature: { algorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', hashFunction: 'http://www.w3.org/2001/04/xmlenc#sha256', weak: false },
  });
  assert.is(endpoint.channels.Partner_channelHTTP1_partner.url, 'http://foo.bar');
  assert.is(endpoint.channels.Partner_channelHTTP1_partner.syncReplyMode, 'signalsAndResponse');
  const krav = endpoint.services.find((service: { service: string }) => service.service === 'BehandlerKrav');
  assert.equal(krav, {
    service: 'BehandlerKrav', type: 'string', role: 'Behandler',
    canSend: [{ action: 'OppgjorsMelding', channels: ['Partner_channelSMTP0_partner'] }],
    canReceive: [{ action: 'Svarmelding', channels: ['Partner_channelSMTP0_partner'] }],
  });
});

test('nav-multiple-channels-and-endpoints: one partner over several channels and endpoints, kept apart by --as', async () => {
  // The same test certificates serve both NAV agreements' partner: one certificate identifies one partner, so the
  // earlier import goes first.
  assert.is((await swx(['partner', 'remove', 'HER-8141253'])).code, 0);
  const partner = await imported([`${cpaFolder}nav-multiple-channels-and-endpoints.xml`, '--party', '8090595', '--as', 'HAUGERUD']);
  assert.is(partner.id, 'HAUGERUD');
  assert.is(partner.name, 'TEST A1 Haugerud');
  const endpoint = partner.endpoints.ebms2;
  assert.is(endpoint.cpaId, 'multiple_channels_and_multiple_endpoints');
  assert.equal(Object.keys(endpoint.channels).sort(), ['Partner_channelHTTP1_partner', 'Partner_channelSMTP0_partner']);
  assert.is(endpoint.channels.Partner_channelSMTP0_partner.url, 'mailto://allPurpose@edi.nhn.no', 'the allPurpose endpoint before the error one');
  assert.equal(endpoint.channels.Partner_channelSMTP0_partner.reliability, { retries: 4, retryIntervalMs: 240 * 60_000, persistDurationMs: 2 * 86_400_000, messageOrder: 'NotGuaranteed' });
  assert.is(endpoint.channels.Partner_channelSMTP0_partner.duplicateElimination, 'always');
  assert.is(endpoint.channels.Partner_channelHTTP1_partner.transport, 'HTTP');
  const services = Object.fromEntries(endpoint.services.map((service: { service: string; canReceive: { action: string; channels: string[] }[] }) => [service.service, service.canReceive]));
  assert.equal(services.HarBorgerEgenandelFritak, [{ action: 'Svar', channels: ['Partner_channelHTTP1_partner'] }, { action: 'Avvisning', channels: ['Partner_channelHTTP1_partner'] }]);
});

test('the ebIOT agreements (no X.509 certificate in them): refused without --cert, then registered with one', async () => {
  const refused = await swx(['partner', 'import-cpa', `${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`, '--party', 'I3T']);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /carries no X\.509 certificate for I3T: give its signing certificate with --cert/);
  const unnamed = await swx(['partner', 'import-cpa', `${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`]);
  assert.is(unnamed.code, 1);
  assert.match(unnamed.stderr, /--party \(CECID or I3T\)/);
  const stranger = await swx(['partner', 'import-cpa', `${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`, '--party', 'NOBODY']);
  assert.match(stranger.stderr, /SWX_BAD_REQUEST: CPA ebIOT-CPAT1\.CECID\.I3T: no party is "NOBODY"/);

  const sellerCert = await issued('I3T');
  const noted = await swx(['partner', 'import-cpa', `${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`, '--party', 'I3T', '--cert', sellerCert]);
  assert.match(noted.stderr, /note: CPA ebIOT-CPAT1\.CECID\.I3T is agreed, valid from 2002-01-01T00:00:00Z to 2010-01-01T00:00:00Z/);
  const seller = await imported([`${cpaFolder}ebIOT-CPAT1.CECID.I3T.xml`, '--party', 'I3T', '--cert', sellerCert]);
  assert.is(seller.id, 'I3T');
  assert.equal(seller.endpoints.ebms2, {
    cpaId: 'ebIOT-CPAT1.CECID.I3T', agreement: { status: 'agreed', start: '2002-01-01T00:00:00Z', end: '2010-01-01T00:00:00Z' }, partyIds: [{ id: 'I3T', type: 'ebIOT' }], roles: ['Seller'], url: 'http://147.8.177.35:8080/msh',
    defaultChannel: 'Party-Seller-chan001',
    channels: { 'Party-Seller-chan001': {
      transport: 'HTTP', url: 'http://147.8.177.35:8080/msh', syncReplyMode: 'none', ackRequested: 'never', ackSignatureRequested: 'never',
      duplicateElimination: 'never', actor: 'urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH',
    } },
    services: [{ service: 'urn:ebIOT-TestService:order', type: 'anyURI', role: 'Seller', canSend: [], canReceive: [{ action: 'Order', channels: ['Party-Seller-chan001'] }] }],
  });

  const buyer = await imported([`${cpaFolder}ebIOT-CPAT1.I3T.CECID.xml`, '--party', 'ebIOT:CECID', '--cert', await issued('CECID')]);
  assert.is(buyer.id, 'CECID');
  assert.is(buyer.endpoints.ebms2.url, 'http://147.8.178.159:8080/msh/');
  assert.equal(buyer.endpoints.ebms2.services[0].canReceive, [{ action: 'Order', channels: ['Party-Seller-chan001'] }]);

  // Re-imported under the same id from another agreement: the endpoint is replaced, the certificates kept. Without
  // --party, the party that is not this hub by its PartyIds in connectors.ebms2.partyIds.
  writeFileSync(join(hub.dataDir, 'swx.json'), JSON.stringify({ connectors: { ebms2: { partyIds: [{ id: 'CECID', type: 'ebIOT' }] } } }));
  const again = await imported([`${cpaFolder}ebIOT-CPAT3-2.CECID.I3T.xml`]);
  assert.is(again.id, 'I3T');
  assert.is(again.endpoints.ebms2.cpaId, 'ebIOT-CPAT3-2.CECID.I3T');
  assert.is(again.endpoints.ebms2.url, 'https://147.8.177.35:8443/msh');
  assert.equal(again.certificates, seller.certificates);
});

test('the registry holds an ebms2 endpoint to its schema: a channel it names must exist', async () => {
  const partner = JSON.parse((await swx(['partner', 'show', 'I3T'])).stdout);
  const broken = { ...partner, endpoints: { ebms2: { ...partner.endpoints.ebms2, defaultChannel: 'nowhere' } } };
  const answer = await hub.admin('PUT', '/api/partners/I3T', broken);
  assert.is(answer.status, 400);
  assert.match(answer.body.detail, /endpoint ebms2\.defaultChannel: names channel "nowhere"/);
  const pem = readFileSync(await issued('ODD'), 'utf8');
  const odd = await hub.admin('PUT', '/api/partners/ODD', { name: 'odd', certificates: [pem], endpoints: { ebms2: { cpaId: 'x' } } });
  assert.is(odd.status, 400);
  assert.match(odd.body.detail, /endpoint ebms2\.partyIds/);
});

test.run();
