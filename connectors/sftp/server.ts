// The hub's SFTP server (ssh2): agencies log in with an SSH key registered on their partner entry, under their partner
// id as user name; passwords and keyboard-interactive are refused. A session offers the SFTP subsystem only (no shell,
// no exec, no forwarding). Modern algorithms only; an agency's legacy key (ssh-rsa signing with SHA-1, DSA) logs in
// only when its sftp endpoint allows it. The legacy listener, a second server on its own port, also offers the SHA-1
// key exchange and MACs and CBC ciphers older clients need (agreed before login, so on a port of their own), to the
// agencies whose endpoint allows it. Either way the session's transfers carry a flag into their evidence.
import type { AddressInfo } from 'node:net';
import ssh2, { type Algorithms, type Connection, type PublicKeyAuthContext } from 'ssh2';
import { log } from '../../engine/log.ts';
import { Unauthenticated } from '../../engine/peer.ts';
import type { Registry } from '../../engine/registry.ts';
import { fingerprintOf } from '../../engine/ssh-key.ts';
import type { Intake } from '../../engine/submission.ts';
import type { HostKey } from './hostkey.ts';
import { AgencySession, type SessionContext } from './session.ts';
import { sftpEndpoint } from './settings.ts';

/** Time to log in, and attempts allowed, before the connection is closed. */
const loginSeconds = 30;
const maxAttempts = 12;

/** What a modern OpenSSH client offers; nothing with SHA-1 or CBC. */
const modern = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group16-sha512', 'diffie-hellman-group14-sha256'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  serverHostKey: ['ssh-ed25519'],
  compress: ['none'],
} satisfies Algorithms;

/** The legacy listener's: the modern ones first, then SHA-1 key exchange and MACs and CBC ciphers. */
const withLegacy = {
  ...modern,
  kex: [...modern.kex, 'diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1'],
  cipher: [...modern.cipher, 'aes256-cbc', 'aes192-cbc', 'aes128-cbc', '3des-cbc'],
  hmac: [...modern.hmac, 'hmac-sha1', 'hmac-sha1-96'],
} satisfies Algorithms;

/** Which listener a server is: the main one, or the legacy one on its own port. */
export type Listener = 'main' | 'legacy';

/** The flags a session's transfers carry into their evidence (Envelope.flags). */
const legacyFlags = { key: 'legacy_login', algorithms: 'legacy_algorithms' } as const;

export interface SftpServerOptions {
  hostKey: HostKey;
  registry: Registry;
  intake: Intake;
  session: SessionContext;
  maxSessionsPerAgency: number;
}

/** A signature algorithm SHA-1 era keys use: ssh-rsa with SHA-1, or DSA. */
const legacy = (context: PublicKeyAuthContext) => context.key.algo === 'ssh-dss' || (context.key.algo === 'ssh-rsa' && !context.hashAlgo);

/** Agencies' open sessions, counted across listeners. */
export type SessionCounts = Map<string, number>;

export function startSftpServer(options: SftpServerOptions, host: string, port: number, listener: Listener = 'main', sessions: SessionCounts = new Map()): Promise<{ port: number; close(): Promise<void> }> {
  const { registry } = options;
  const connections = new Set<Connection>();
  const algorithms = listener === 'legacy' ? withLegacy : modern;
  const server = new ssh2.Server({ hostKeys: [options.hostKey.privateKey], algorithms, ident: 'swx' }, (client, info) => {
    connections.add(client);
    let partnerId: string | undefined;
    let flags: string[] = [];
    let negotiated: unknown;
    client.on('handshake', (agreed) => { negotiated = agreed; });
    let attempts = 0;
    let unknownCounted = false;
    const timer = setTimeout(() => { if (!partnerId) client.end(); }, loginSeconds * 1000);
    timer.unref();
    const refuseUnknown = (fingerprint: string, why: string) => {
      if (unknownCounted) return;
      unknownCounted = true;
      // Counted with the refusals before authentication from this address (engine/unauthenticated.ts), not stored one by one.
      void options.intake.reject({ protocol: 'sftp', payload: Buffer.alloc(0) }, new Unauthenticated('SWX_AUTH_UNKNOWN_CERT', why, info.ip, fingerprint)).catch(() => undefined);
    };
    client.on('authentication', (context) => {
      if (++attempts > maxAttempts) {
        client.end();
        return;
      }
      if (context.method !== 'publickey') {
        context.reject(['publickey']);
        return;
      }
      const fingerprint = fingerprintOf(context.key.data);
      const found = registry.sshKeyByFingerprint(fingerprint);
      if (!found || !found.partner.enabled || found.partner.id !== context.username) {
        // The user name is the client's word only: it is not kept.
        refuseUnknown(fingerprint, found ? `SSH key ${fingerprint} offered under a user name that is not its partner's id` : `SSH key ${fingerprint} is not registered to any enabled partner`);
        context.reject(['publickey']);
        return;
      }
      const endpoint = sftpEndpoint.parse(found.partner.endpoints.sftp ?? {});
      if (listener === 'legacy' && !endpoint.legacyAlgorithms) {
        log.warn({ partner: found.partner.id, fingerprint, negotiated }, 'SFTP login refused on the legacy listener: legacyAlgorithms is not enabled on this agency\'s sftp endpoint');
        context.reject(['publickey']);
        return;
      }
      if (legacy(context) && !endpoint.legacyKeyTypes) {
        log.warn({ partner: found.partner.id, fingerprint, algorithm: context.key.algo }, 'SFTP login refused: a legacy key signature (SHA-1 or DSA), not enabled on this agency\'s sftp endpoint');
        context.reject(['publickey']);
        return;
      }
      if (!context.signature) {
        context.accept();
        return;
      }
      const key = ssh2.utils.parseKey(found.key.key);
      if (key instanceof Error || Array.isArray(key) || key.verify(context.blob!, context.signature, context.hashAlgo) !== true) {
        context.reject(['publickey']);
        return;
      }
      const open = sessions.get(found.partner.id) ?? 0;
      if (open >= options.maxSessionsPerAgency) {
        log.warn({ partner: found.partner.id, open }, 'SFTP login refused: the agency has as many sessions open as it may');
        context.reject(['publickey']);
        return;
      }
      flags = [...(legacy(context) ? [legacyFlags.key] : []), ...(listener === 'legacy' ? [legacyFlags.algorithms] : [])];
      if (flags.length) log.warn({ partner: found.partner.id, fingerprint, algorithm: context.key.algo, negotiated, flags }, 'SFTP login with legacy algorithms, enabled on this agency\'s sftp endpoint: its transfers are flagged');
      partnerId = found.partner.id;
      sessions.set(partnerId, open + 1);
      context.accept();
    });
    client.on('ready', () => {
      log.info({ partner: partnerId, address: info.ip, listener }, 'SFTP login');
      client.on('session', (accept) => {
        const session = accept();
        session.on('error', (error: Error) => log.debug({ err: error.message, partner: partnerId }, 'SFTP session channel error'));
        session.on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          new AgencySession(sftp, partnerId!, options.session, () => client.end(), flags);
        });
      });
    });
    client.on('error', (error) => log.debug({ err: error.message, address: info.ip }, 'SFTP connection error'));
    client.on('close', () => {
      clearTimeout(timer);
      connections.delete(client);
      if (partnerId) sessions.set(partnerId, Math.max(0, (sessions.get(partnerId) ?? 1) - 1));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          for (const client of connections) client.end();
        }),
      });
    });
  });
}
