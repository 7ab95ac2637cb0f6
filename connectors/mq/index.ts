// The IBM MQ connector: partners whose systems speak MQ put their signed messages on a get queue the hub reads under
// syncpoint, and receive their deliveries on a put queue. IBM's client library is loaded only once a partner has an
// MQ endpoint; without it the connector reports itself unhealthy, saying what to install, and deliveries wait.
import { registerConnector, type ConnectorHealth } from '../../engine/connector.ts';
import { log } from '../../engine/log.ts';
import type { Partner } from '../../engine/registry.ts';
import { mqEndpoint, mqServes, mqSettings, type MqEndpoint } from './endpoint.ts';
import { IbmMqQueueManagers, loadIbmMq } from './ibmmq.ts';
import { InMemoryQueueManagers } from './in-memory.ts';
import { MqInbound } from './inbound.ts';
import { MqOutbound } from './outbound.ts';
import { MqError, type QueueManagers } from './session.ts';

export { mqEndpoint, mqSettings, type MqEndpoint, type MqSettings } from './endpoint.ts';
export { InMemoryQueueManager, InMemoryQueueManagers, InMemorySession } from './in-memory.ts';
export { MqInbound, type MqInboundOptions } from './inbound.ts';
export { MqOutbound, deliveryMessage } from './outbound.ts';
export { ibmMqMissing, loadIbmMq } from './ibmmq.ts';
export { envelopeProperties, hubProperties, mqIdOf, idOfMqId } from './contract.ts';
export type { MqDescriptor, MqMessage, QueueManagers, QueueSession } from './session.ts';

/** The MQ endpoint of a partner the hub exchanges with, if it has one and is enabled. */
const mqOf = (partner: Partner) => (partner.enabled ? partner.endpoints.mq as MqEndpoint | undefined : undefined);

registerConnector({
  protocol: 'mq',
  summary: 'IBM MQ: signed messages got from a partner\'s queue under syncpoint, committed once stored; deliveries put and committed',
  settings: mqSettings,
  endpoint: mqEndpoint,
  serves: mqServes,
  start({ registry, intake, trust, signatures, identity }, settings) {
    let managers: QueueManagers | undefined = settings.queueManager === 'in-memory' ? new InMemoryQueueManagers() : undefined;
    let missing: string | undefined;
    const unreachable = new Map<string, string>();
    const loops = new Map<string, { inbound: MqInbound; endpoint: string }>();
    let chain: Promise<void> = Promise.resolve();

    // The import is tried once per process (a library installed later needs a restart): a failure is logged once.
    const load = async (): Promise<QueueManagers | undefined> => {
      if (managers || missing) return managers;
      try {
        managers = new IbmMqQueueManagers(await loadIbmMq());
      } catch (error) {
        missing = (error as Error).message;
        log.error({ partners: mqPartners().map((partner) => partner.id) }, `MQ connector unhealthy: ${missing}`);
      }
      return managers;
    };
    const mqPartners = () => registry.listPartners().filter((partner) => mqOf(partner));

    /** One inbound loop per partner with a get queue, restarted when its endpoint changes. */
    const sync = async () => {
      const wanted = new Map(mqPartners().flatMap((partner) => (mqOf(partner)!.getQueue ? [[partner.id, mqOf(partner)!] as const] : [])));
      for (const [id, loop] of loops) {
        if (wanted.get(id) && JSON.stringify(wanted.get(id)) === loop.endpoint) continue;
        loops.delete(id);
        unreachable.delete(id);
        await loop.inbound.stop();
      }
      if (mqPartners().length === 0) return;
      const sessions = await load();
      if (!sessions) return;
      for (const [id, endpoint] of wanted) {
        if (loops.has(id)) continue;
        const inbound = new MqInbound(id, endpoint as MqEndpoint & { getQueue: string }, sessions, {
          intake, registry, trust, payloadVerifiers: signatures, signing: identity.signing,
          maxMessageBytes: settings.maxMessageBytes, backoutQueue: settings.backoutQueue,
          onHealth: (ok, detail) => { if (ok) unreachable.delete(id); else unreachable.set(id, detail ?? 'unreachable'); },
        });
        loops.set(id, { inbound, endpoint: JSON.stringify(endpoint) });
        inbound.start();
      }
    };
    const resync = () => { chain = chain.then(sync).catch((error) => log.error({ err: error }, 'MQ connector: could not start its partners\' loops')); };
    resync();
    const unsubscribe = registry.onChange((kind) => { if (kind === 'partner') resync(); });

    const outbound = new MqOutbound(() => {
      if (managers) return managers;
      void load();
      throw new MqError(missing ?? 'the MQ client library is being loaded');
    }, settings.maxMessageBytes);

    return {
      outbound,
      health(): ConnectorHealth {
        const partners = mqPartners().length;
        if (partners === 0) return { ok: true, detail: 'no MQ partners' };
        if (missing) return { ok: false, detail: missing };
        if (unreachable.size > 0) return { ok: false, detail: [...unreachable.values()].join('; ') };
        return { ok: true, detail: `${partners} MQ partner(s), ${settings.queueManager === 'in-memory' ? 'in-memory queue managers (tests and demo only)' : 'IBM MQ client'}` };
      },
      // The queue manager is the hub's client library's to reach: its state is the connector's health.
      async probe() {
        const detail = missing ?? (unreachable.size > 0 ? [...unreachable.values()].join('; ') : 'the MQ client is loaded');
        return { ok: !missing && unreachable.size === 0, detail, ms: 0 };
      },
      async stop() {
        unsubscribe();
        await chain;
        await Promise.all([...loops.values()].map((loop) => loop.inbound.stop()));
        loops.clear();
        await outbound.close();
      },
    };
  },
});
