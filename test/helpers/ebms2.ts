// What the ebMS 2.0 end-to-end tests share: a hub's PartyIds in swx.json, a CPA channel as the tests agree it, the
// agreement each hub registers for the agencies behind the other, and TFDA's gateway registered at a hub.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { addService, type HubProcess } from './hub.ts';

export const hubType = 'urn:swx:hub';
const rsaSha256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

export function writeEbms2Settings(dir: string, partyIds: { id: string; type: string }[], settings: Record<string, unknown> = {}): void {
  writeFileSync(join(dir, 'swx.json'), JSON.stringify({ ...settings, connectors: { ebms2: { partyIds } } }));
}

export const channel = (url: string, extra: Record<string, unknown> = {}) => ({
  transport: 'HTTP', url, syncReplyMode: 'mshSignalsOnly', ackRequested: 'always', ackSignatureRequested: 'always', duplicateElimination: 'always',
  reliability: { retries: 3, retryIntervalMs: 2000, persistDurationMs: 24 * 3600 * 1000 },
  signature: { algorithm: rsaSha256, weak: false }, ...extra,
});

/** The agreement with a remote hub's MSH, as the other hub registers each agency behind it. */
export const hubAgreement = (port: number, party: string, cpaId = 'swx-hub-a-hub-b', services = ['customs.declaration', 'trade.reply']) => {
  const url = `https://localhost:${port}/ebms2`;
  const both = [{ action: 'deliver', channels: ['messages'] }];
  return {
    cpaId, partyIds: [{ id: party, type: hubType }], roles: ['exchange'], url, defaultChannel: 'messages',
    channels: { messages: channel(url) },
    services: services.map((service) => ({ service, role: 'exchange', canSend: both, canReceive: both })),
  };
};

/** TFDA's own ebMS 2.0 gateway at a hub: its certificate and agreement; it sends health.notice to CUSTOMS, and never receives. */
export async function registerTfdaGateway(hub: HubProcess, certPem: string): Promise<void> {
  const tfda = await hub.admin('PUT', '/api/partners/TFDA', {
    name: 'TFDA gateway', certificates: [certPem],
    endpoints: { ebms2: {
      cpaId: 'tfda-hub-a', partyIds: [{ id: 'tfda-gw', type: 'urn:example:party' }], roles: ['notifier'], defaultChannel: 'c1',
      channels: { c1: channel('https://localhost:9/msh') },
      services: [{ service: 'health.notice', role: 'notifier', canSend: [{ action: 'Submit', channels: ['c1'] }], canReceive: [] }],
    } },
  });
  assert.is(tfda.status, 200, JSON.stringify(tfda.body));
  await addService(hub, 'health.notice', ['TFDA'], ['CUSTOMS']);
}
