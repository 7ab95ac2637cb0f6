// The connection test of a partner's endpoint, as the console's Test connection asks it: what each connector answers,
// and the TLS handshake every HTTPS-borne connector makes.
import { connect as connectTls } from 'node:tls';
import { describeTransportFailure, partnerConnection, type ClientCredential, type ServerTrust } from './server-trust.ts';

/** What a connection test found: whether the partner's endpoint can be reached as deliveries reach it, and how long asking took. */
export interface ProbeResult { ok: boolean; detail: string; ms: number }

/** How long a connection test waits for a partner before it says so. */
export const probeTimeoutMs = 10_000;

/**
 * A connection test of an HTTPS endpoint: a TLS handshake with the credential and trust the deliveries use (the hub's
 * client certificate, the endpoint's server trust), the peer certificate's subject and validity reported, and closed;
 * no request sent.
 */
export function probeHttps(url: string | undefined, hub: ClientCredential, trust: ServerTrust | undefined, timeoutMs = probeTimeoutMs): Promise<ProbeResult> {
  const started = performance.now();
  const result = (ok: boolean, detail: string): ProbeResult => ({ ok, detail, ms: Math.round(performance.now() - started) });
  // The partner reaches the hub on this protocol (pull, inbound only): there is no way out of the hub to try.
  if (url === undefined) return Promise.resolve(result(true, 'not applicable: the hub does not connect to this endpoint'));
  let target: URL;
  try { target = new URL(url); } catch { return Promise.resolve(result(false, `${url} is not a URL`)); }
  if (target.protocol !== 'https:') return Promise.resolve(result(false, `${target.origin} is not HTTPS`));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connectTls({
      host, port: Number(target.port || 443), ...partnerConnection(hub, trust), ALPNProtocols: ['http/1.1'],
      ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }),
    });
    const end = (probe: ProbeResult) => { socket.destroy(); resolve(probe); };
    socket.setTimeout(timeoutMs, () => end(result(false, `${target.origin}: no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', (error: Error & { code?: string }) => end(result(false, `${target.origin}: ${describeTransportFailure(error)}`)));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const subject = Object.entries(peer.subject ?? {}).map(([name, value]) => `${name}=${String(value)}`).join(', ');
      end(result(true, `${target.origin}: TLS ${socket.getProtocol() ?? ''} with ${subject || 'a certificate without subject'}, valid ${peer.valid_from} to ${peer.valid_to}`));
    });
  });
}
