// `swx pki import`: an outside CA as trust anchor or intermediate, or an agency certificate issued by an outside CA,
// each validated before it is written to the data folder (a hub running on that folder picks it up within seconds).
import { join } from 'node:path';
import { SwxError } from '../errors.ts';
import { certificates, type ParsedCert } from '../trust/certs.ts';
import { buildPath, usageRefusal, type CertRefusal, type Purpose } from '../trust/path.ts';
import { layout, writeOnce, writeReplace } from './store.ts';
import { TrustStore, type TrustSettings } from './trust.ts';
import { toPem } from '../trust/x509.ts';

export type ImportRole = { as: 'anchor' } | { as: 'intermediate' } | { as: 'agency'; id: string };

export interface ImportedCert {
  role: 'anchor' | 'intermediate' | 'agency';
  subject: string;
  issuer: string;
  serial: string;
  thumbprint: string;
  notAfter: string;
  path: string;
  /** false when the same certificate was already there. */
  created: boolean;
}

export interface ImportResult {
  imported: ImportedCert[];
  /** For an agency certificate: the purposes it passed validation for. */
  purposes?: Purpose[];
}

const agencyPurposes: Purpose[] = ['agency-signing', 'tls-client'];

function refuse(refusal: CertRefusal, what: string): never {
  throw new SwxError(refusal.code, `${what}: ${refusal.detail}`);
}

function summary(role: ImportedCert['role'], cert: ParsedCert, path: string, created: boolean): ImportedCert {
  return { role, subject: cert.subject, issuer: cert.issuer, serial: cert.serial, thumbprint: cert.thumbprint, notAfter: new Date(cert.notAfter).toISOString(), path, created };
}

async function writeCa(dir: string, role: 'anchor' | 'intermediate', cert: ParsedCert): Promise<ImportedCert> {
  const path = join(role === 'anchor' ? layout.anchors(dir) : layout.intermediates(dir), `${cert.thumbprint}.pem`);
  const { created } = await writeOnce(path, toPem(cert.der, 'CERTIFICATE'), 0o644);
  return summary(role, cert, path, created);
}

/**
 * Validates and imports the certificates of a PEM text into the PKI folder `dir`:
 * - anchor: every certificate must be a CA certificate (basicConstraints cA, keyCertSign) valid now;
 * - intermediate: every certificate must be a CA certificate that chains to a trusted anchor, valid and not revoked;
 * - agency: the first certificate is the agency's, the rest its chain (imported as intermediates); it must chain to a
 *   trusted anchor, be valid now, not be revoked, and allow signing or TLS client authentication. It is written to
 *   partners/<ID>/cert.pem, ready for `swx partner add --cert`.
 */
export async function importCertificates(dir: string, pem: string, role: ImportRole, settings: TrustSettings): Promise<ImportResult> {
  const certs = certificates(pem);
  if (!certs.length) throw new SwxError('SWX_BAD_REQUEST', 'the file holds no PEM CERTIFICATE block');
  const now = Date.now();
  if (role.as === 'anchor') {
    const imported: ImportedCert[] = [];
    for (const cert of certs) {
      const self = buildPath(cert, [], [cert], now);
      if (!('path' in self)) refuse(self, `anchor ${cert.subject}`);
      const notCa = usageRefusal(cert, 'ca');
      if (notCa) refuse(notCa, 'an anchor must be a CA certificate');
    }
    for (const cert of certs) imported.push(await writeCa(dir, 'anchor', cert));
    return { imported };
  }

  const trust = await TrustStore.open(dir, settings);
  const [leaf, ...chain] = certs as [ParsedCert, ...ParsedCert[]];
  const cas = role.as === 'intermediate' ? certs : chain;
  for (const cert of cas) {
    const refusal = await trust.check(cert, 'ca', now, cas);
    if (refusal) refuse(refusal, `intermediate ${cert.subject}`);
  }
  const imported: ImportedCert[] = [];
  for (const cert of cas) imported.push(await writeCa(dir, 'intermediate', cert));
  if (role.as === 'intermediate') return { imported };

  const refusals: CertRefusal[] = [];
  const purposes: Purpose[] = [];
  for (const purpose of agencyPurposes) {
    const refusal = await trust.check(leaf, purpose, now, chain);
    if (refusal) refusals.push(refusal);
    else purposes.push(purpose);
  }
  if (!purposes.length) refuse(refusals[0]!, `agency certificate ${leaf.subject}`);
  const folder = layout.partnerFolder(dir, role.id);
  const path = layout.cert(folder);
  await writeReplace(path, toPem(leaf.der, 'CERTIFICATE'), 0o644);
  await writeReplace(layout.chain(folder), [leaf, ...chain].map((cert) => toPem(cert.der, 'CERTIFICATE')).join(''), 0o644);
  return { imported: [summary('agency', leaf, path, true), ...imported], purposes };
}
