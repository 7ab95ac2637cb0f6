// The REST connector: agencies send messages (POST /v1/messages), ask what became of them (GET /v1/messages/<id>),
// ask queries (POST /v1/query/<dataset>) and, when they receive by pull, collect their deliveries (/v1/inbox), over
// mutual TLS with HTTP Message Signatures; the hub delivers to and queries agencies' REST endpoints the same way.
import { connectorSettings, registerConnector } from '../../engine/connector.ts';
import { probeHttps } from '../../engine/probe.ts';
import { restEndpoint, restServes, type RestEndpoint } from './endpoint.ts';
import { mountRestInbound } from './inbound.ts';
import { mountRestInbox } from './inbox.ts';
import { mountOpenApi } from './openapi.ts';
import { RestOutbound } from './outbound.ts';
import { mountRestQueries } from './query.ts';
import { mountRestStatus } from './status.ts';

export { restEndpoint, type RestEndpoint } from './endpoint.ts';

registerConnector({
  protocol: 'rest',
  summary: 'HTTPS + RFC 9421 message signatures: messages, their status, queries, the pull inbox, the OpenAPI document',
  settings: connectorSettings,
  endpoint: restEndpoint,
  serves: restServes,
  start({ config, identity, registry, trust, signatures, intake, payloads, inbox, queries, messages, catalogue, replay, router, budget }) {
    const outbound = new RestOutbound(identity, registry, {
      timeoutMs: config.delivery.timeoutMs, maxSockets: config.delivery.concurrency, clockSkewSeconds: config.clockSkewSeconds,
    }, trust);
    mountRestInbound(router, {
      registry, intake, payloads, trust, payloadVerifiers: signatures, signing: identity.signing,
      maxBodyBytes: config.limits.maxBodyBytes, maxStreamedBodyBytes: config.limits.maxStreamedBodyBytes, budget, clockSkewSeconds: config.clockSkewSeconds,
    });
    mountRestQueries(router, {
      registry, trust, queries, replay, signing: identity.signing,
      maxBodyBytes: config.query.maxBodyBytes, budget, freshnessSeconds: config.query.freshnessSeconds,
    });
    mountRestStatus(router, { registry, trust, messages, signing: identity.signing, clockSkewSeconds: config.clockSkewSeconds });
    mountRestInbox(router, { registry, trust, inbox, payloads, signing: identity.signing, budget, clockSkewSeconds: config.clockSkewSeconds });
    mountOpenApi(router, { catalogue });
    return {
      outbound, provider: outbound, stop: () => outbound.close(),
      probe: (_partner, endpoint) => probeHttps((endpoint as RestEndpoint).url ?? (endpoint as RestEndpoint).queryUrl, identity.tls, (endpoint as RestEndpoint).tls),
    };
  },
});
