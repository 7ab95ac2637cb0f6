// What an agency's uploads hold on the hub in this process, across its sessions: the paths being written (a second
// upload to a path in flight is refused rather than mixed in), and the bytes, held to the agency's quota.
import { SwxError } from '../../engine/errors.ts';

export class Staging {
  private readonly paths = new Map<string, Set<string>>();
  private readonly bytes = new Map<string, number>();

  /** Takes `path` for one upload of `partner`; SWX_DUPLICATE_CONFLICT while another upload holds it. */
  claimPath(partner: string, path: string): void {
    const held = this.paths.get(partner) ?? new Set<string>();
    this.paths.set(partner, held);
    if (held.has(path)) throw new SwxError('SWX_DUPLICATE_CONFLICT', `${path} is being uploaded already and is not complete: it cannot be overwritten; remove it first, or upload under another name`);
    held.add(path);
  }

  releasePath(partner: string, path: string): void {
    this.paths.get(partner)?.delete(path);
  }

  holds(partner: string, path: string): boolean {
    return this.paths.get(partner)?.has(path) ?? false;
  }

  /** Counts `count` more bytes against the partner's quota; SWX_TOO_LARGE past it. */
  claimBytes(partner: string, count: number, quota: number): void {
    const held = this.bytes.get(partner) ?? 0;
    if (held + count > quota) throw new SwxError('SWX_TOO_LARGE', `over the SFTP quota of ${partner}: its uploads not yet taken may hold ${quota} bytes on the hub`);
    this.bytes.set(partner, held + count);
  }

  releaseBytes(partner: string, count: number): void {
    this.bytes.set(partner, Math.max(0, (this.bytes.get(partner) ?? 0) - count));
  }
}
