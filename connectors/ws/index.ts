// The SOAP connector (web services): agencies ask queries over SOAP 1.1 or 1.2 with WS-Security, each dataset described
// by its WSDL; the hub puts queries to providers that answer over SOAP the same way.
import { connectorSettings, registerConnector } from '../../engine/connector.ts';
import { probeHttps } from '../../engine/probe.ts';
import { soapEndpoint, soapServes, type SoapEndpoint } from './endpoint.ts';
import { mountSoapQueries } from './inbound.ts';
import { SoapProvider } from './outbound.ts';

export { soapEndpoint, type SoapEndpoint } from './endpoint.ts';

registerConnector({
  protocol: 'soap',
  summary: 'SOAP 1.1/1.2 + WS-Security: queries, one WSDL per dataset',
  settings: connectorSettings,
  endpoint: soapEndpoint,
  serves: soapServes,
  start({ config, identity, registry, trust, signatures, queries, catalogue, replay, router, publicUrl }) {
    const verifyXml = signatures.verifyXml.bind(signatures);
    const provider = new SoapProvider({
      tls: identity.tls, signing: identity.signing, registry, trust, verifyXml,
      clockSkewSeconds: config.clockSkewSeconds, freshnessSeconds: config.query.freshnessSeconds, maxSockets: config.delivery.concurrency,
    });
    mountSoapQueries(router, {
      registry, trust, catalogue, queries, replay, hub: identity.signing, verifyXml, publicUrl,
      maxBodyBytes: config.query.maxBodyBytes, clockSkewSeconds: config.clockSkewSeconds, freshnessSeconds: config.query.freshnessSeconds,
    });
    return { provider, stop: () => provider.close(), probe: (_partner, endpoint) => probeHttps((endpoint as SoapEndpoint).queryUrl, identity.tls, (endpoint as SoapEndpoint).tls) };
  },
});
