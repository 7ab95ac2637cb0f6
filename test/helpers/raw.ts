// Requests to the hub's agency port as a hostile or careless client sends them: bytes and headers as given, without
// the agency toolkit's signing, over node:https or a bare TLS socket.
import { Agent, request } from 'node:https';
import { connect } from 'node:tls';
import type { ReceivedAnswer } from '../../connectors/rest/agency.ts';

export interface RawAnswer extends ReceivedAnswer { reused: boolean }
export interface RawTls { cert?: string; key?: string; ca?: string; agent?: Agent }

/**
 * POSTs `body` with the given headers and TLS identity (or keep-alive agent); `chunked` sends without Content-Length.
 * The body goes in 16 KiB pieces and stops once the reply begins, as a careful client does: the hub may answer and
 * close before the body ended, and the reply is what counts, not the broken pipe that may follow it.
 */
export function rawPost(url: string, headers: Record<string, string>, body: Buffer, tls: RawTls & { chunked?: boolean }): Promise<RawAnswer> {
  const { chunked, ...connection } = tls;
  return new Promise<RawAnswer>((resolve, reject) => {
    let replying = false;
    const req = request(url, {
      method: 'POST', headers: chunked ? headers : { ...headers, 'content-length': String(body.length) }, ...connection,
    }, (res) => {
      replying = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('close', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try { parsed = JSON.parse(text || '{}'); } catch { /* a reply cut short: the caller sees its text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers, text, reused: req.reusedSocket });
      });
    });
    req.on('error', (error) => { if (!replying) reject(error); });
    let offset = 0;
    const step = 16 * 1024;
    const next = (): void => {
      if (replying || req.destroyed) return;
      if (offset >= body.length) { req.end(); return; }
      const chunk = body.subarray(offset, offset + step);
      offset += step;
      if (req.write(chunk)) setImmediate(next); else req.once('drain', next);
    };
    next();
  });
}

/**
 * Starts a POST whose body it sends only up to `sent` bytes, then holds the request open until `abort`: a slow or
 * vanishing sender. `reply` settles on the hub's answer, or with undefined once the request is aborted.
 */
export function holdPost(url: string, headers: Record<string, string>, sent: Buffer, tls: RawTls) {
  const req = request(url, { method: 'POST', headers, ...tls });
  const reply = new Promise<RawAnswer | undefined>((resolve) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}'), headers: res.headers, text, reused: false });
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
  req.flushHeaders();
  req.write(sent);
  return { reply, abort: () => req.destroy() };
}

/** Writes `bytes` as they are over a TLS connection and returns what came back until the hub closed it. */
export function rawTls(port: number, bytes: string | Buffer, tls: RawTls & { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: tls.ca, cert: tls.cert, key: tls.key }, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => { if (!chunks.length) reject(error); });
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.setTimeout(tls.timeoutMs ?? 10_000, () => socket.destroy());
  });
}
