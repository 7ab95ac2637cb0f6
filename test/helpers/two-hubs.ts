// Two swx hubs under one root, each registering the other as the partner behind which an agency stands: CUSTOMS at hub
// A, BOFT at hub B, reached over the protocol under test. Hub B's PKI is issued from a copy of hub A's CA, so each
// trusts the other's TLS and signing certificates through the common anchor. The CA and TLS keys are RSA; the hubs sign
// with RSA too, or with Ed25519 keys placed before their PKI is made (eDelivery AS4 2.0 signs with Ed25519).
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { InboxEntry } from '../../connectors/rest/agency.ts';
import { initPki, loadPki } from '../../engine/pki/index.ts';
import { addAgency, addService, freePort, startHubProcess, tempDir, type HubProcess, type TestAgency } from './hub.ts';

type Pki = Awaited<ReturnType<typeof loadPki>>;

export interface TwoHubs {
  hubA: HubProcess;
  hubB: HubProcess;
  dirA: string;
  pkiA: Pki;
  pkiB: Pki;
  customs: TestAgency;
  boft: TestAgency;
}

export async function twoHubsUnderOneRoot(name: string, options: {
  /** Writes a hub's swx.json (its own party ids) before it starts. */
  settings(dir: string, party: 'hub-a' | 'hub-b'): void;
  /** The other hub's endpoint of the protocol under test, as a hub registers the agency behind it; `other` its PKI. */
  endpoints(agencyPort: number, party: 'hub-a' | 'hub-b', other: Pki): Record<string, unknown>;
  onCustomsMessage(entry: InboxEntry): void;
  /** The hubs' signing key type (default RSA). */
  signingKey?: 'rsa' | 'ed25519';
}): Promise<TwoHubs> {
  const placeSigningKey = (dir: string) => {
    if (options.signingKey !== 'ed25519') return;
    mkdirSync(join(dir, 'pki', 'hub-sign'), { recursive: true });
    writeFileSync(join(dir, 'pki', 'hub-sign', 'key.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  };
  const dirA = tempDir(`${name}-a`);
  options.settings(dirA, 'hub-a');
  placeSigningKey(dirA);
  const hubA = await startHubProcess({ dataDir: dirA, env: { SWX_PKI_ALG: 'rsa' } });
  const portsB = { agency: await freePort(), ops: await freePort(), nats: await freePort() };
  const dirB = tempDir(`${name}-b`);
  options.settings(dirB, 'hub-b');
  placeSigningKey(dirB);
  cpSync(join(dirA, 'pki', 'ca'), join(dirB, 'pki', 'ca'), { recursive: true });
  await initPki(join(dirB, 'pki'), { agencies: [], alg: 'rsa', crlUrl: `http://localhost:${portsB.ops}/pki/crl` });
  const hubB = await startHubProcess({ dataDir: dirB, env: { SWX_PKI_ALG: 'rsa' }, ports: portsB });

  const pkiA = await loadPki(join(dirA, 'pki'));
  const pkiB = await loadPki(join(dirB, 'pki'));
  const customs = await addAgency(hubA, 'CUSTOMS', { onMessage: options.onCustomsMessage });
  const boft = await addAgency(hubB, 'BOFT');
  for (const [hub, id, other, port, party] of [[hubA, 'BOFT', pkiB, hubB.agencyPort, 'hub-b'], [hubB, 'CUSTOMS', pkiA, hubA.agencyPort, 'hub-a']] as const) {
    const put = await hub.admin('PUT', `/api/partners/${id}`, { name: `${id} behind ${party}`, certificates: [other.hubSign.certPem], endpoints: options.endpoints(port, party, other) });
    assert.is(put.status, 200, JSON.stringify(put.body));
  }
  for (const hub of [hubA, hubB]) {
    await addService(hub, 'customs.declaration', ['CUSTOMS'], ['BOFT']);
    await addService(hub, 'trade.reply', ['BOFT'], ['CUSTOMS']);
  }
  return { hubA, hubB, dirA, pkiA, pkiB, customs, boft };
}
