// The signature pool: CPU-heavy signature work (CMS and XML verification, XML signing through the DOM, batch digests)
// on worker threads (piscina), off the event loop of the process that takes traffic. Handing a task to a worker costs
// ~200 µs whatever it carries (field notes), so calls made in the same turn of the event loop travel together, one
// batch per worker.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { errorCodes, SwxError, type ErrorCode } from '../errors.ts';
import type { CmsVerdict, VerifyCmsOptions } from './cms.ts';
import { asBuffer, type DigestAlgorithm, type Outcome, type SignatureTask } from './pool-worker.ts';
import { signSoap, type SignSoapOptions } from './wssecurity.ts';
import { signXml, type SignXmlOptions, type VerifyXmlOptions, type XmlVerdict } from './xmldsig.ts';

export type { DigestAlgorithm };

export interface PoolOptions {
  /** Worker threads; default: the cores but one, at least one. */
  threads?: number;
  /** The most items one task carries. */
  maxBatch?: number;
  /** Heap bound of a worker (MB): one that exceeds it dies, its batch fails with an error, the pool starts another. */
  maxHeapMb?: number;
}

/** XML signing as the protocols use it: in process (signXml, signSoap), or the signature pool's, on its threads. */
export interface XmlSigners {
  signXml(xml: string, options: SignXmlOptions): Promise<string>;
  signSoap(envelope: string, options: SignSoapOptions): Promise<string>;
}

/** The signers on the calling thread, for a process that runs no pool (tools, tests). */
export const inProcessSigners: XmlSigners = { signXml, signSoap };

export interface SignaturePool extends XmlSigners {
  readonly threads: number;
  verifyCms(der: Buffer, options?: VerifyCmsOptions): Promise<CmsVerdict>;
  verifyXml(xml: Buffer | string, options?: VerifyXmlOptions): Promise<XmlVerdict>;
  digest(data: Buffer, algorithm?: DigestAlgorithm): Promise<Buffer>;
  /** Runs what was asked already, refuses new work (SWX_UNAVAILABLE), then stops the workers. */
  close(): Promise<void>;
}

interface Pending<I, R> {
  item: I;
  resolve(result: R): void;
  reject(error: Error): void;
}

type Item<K extends SignatureTask['kind']> = Extract<SignatureTask, { kind: K }>['items'][number];

// The hub runs TypeScript through tsx's loader (bin/swx.js registers it in the main thread only): workers load it too.
const tsxLoader = import.meta.resolve('tsx');

export function createSignaturePool(options: PoolOptions = {}): SignaturePool {
  const threads = Math.max(1, options.threads ?? availableParallelism() - 1);
  const maxBatch = options.maxBatch ?? 64;
  const piscina = new Piscina<SignatureTask, Outcome[]>({
    filename: new URL('./pool-worker.ts', import.meta.url).href,
    execArgv: ['--import', tsxLoader],
    minThreads: threads,
    maxThreads: threads,
    ...(options.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } } : {}),
  });
  const running = new Set<Promise<unknown>>();
  let closed = false;

  /** Items asked for in one turn of the event loop, sent as batches spread over the workers. */
  function batcher<K extends SignatureTask['kind'], R>(toTask: (items: Item<K>[]) => SignatureTask, fromWorker: (value: unknown) => R) {
    let queue: Pending<Item<K>, R>[] = [];
    const send = (batch: Pending<Item<K>, R>[]) => {
      const done = piscina.run(toTask(batch.map((entry) => entry.item))).then(
        (outcomes) => batch.forEach((entry, i) => {
          const outcome = outcomes[i];
          if (outcome?.ok) entry.resolve(fromWorker(outcome.value));
          else entry.reject(new SwxError(outcome?.code && outcome.code in errorCodes ? (outcome.code as ErrorCode) : 'SWX_INTERNAL', outcome?.message ?? 'the worker answered no outcome'));
        }),
        (error: unknown) => {
          const failure = new SwxError('SWX_INTERNAL', `signature worker failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
          batch.forEach((entry) => entry.reject(failure));
        },
      );
      running.add(done);
      void done.finally(() => running.delete(done));
    };
    const flush = () => {
      const all = queue;
      queue = [];
      const size = Math.min(maxBatch, Math.ceil(all.length / threads));
      for (let at = 0; at < all.length; at += size) send(all.slice(at, at + size));
    };
    return (item: Item<K>): Promise<R> => {
      if (closed) return Promise.reject(new SwxError('SWX_UNAVAILABLE', 'the signature pool is closed'));
      return new Promise<R>((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush);
        queue.push({ item, resolve, reject });
        if (queue.length >= maxBatch * threads) flush();
      });
    };
  }

  const cms = batcher<'cms-verify', CmsVerdict>((items) => ({ kind: 'cms-verify', items }), (value) => {
    const verdict = value as CmsVerdict;
    return verdict.content ? { ...verdict, content: asBuffer(verdict.content) } : verdict;
  });
  const xml = batcher<'xml-verify', XmlVerdict>((items) => ({ kind: 'xml-verify', items }), (value) => value as XmlVerdict);
  const xmlSign = batcher<'xml-sign', string>((items) => ({ kind: 'xml-sign', items }), (value) => value as string);
  const soapSign = batcher<'soap-sign', string>((items) => ({ kind: 'soap-sign', items }), (value) => value as string);
  const digests = new Map<DigestAlgorithm, (item: Uint8Array) => Promise<Buffer>>();

  return {
    threads,
    verifyCms: (der, verifyOptions = {}) => cms({ der, options: verifyOptions }),
    verifyXml: (document, verifyOptions = {}) => xml({ xml: document, options: verifyOptions }),
    signXml: (document, signOptions) => xmlSign({ xml: document, options: signOptions }),
    signSoap: (envelope, signOptions) => soapSign({ envelope, options: signOptions }),
    digest(data, algorithm = 'sha256') {
      let run = digests.get(algorithm);
      if (!run) {
        run = batcher<'digest', Buffer>((items) => ({ kind: 'digest', algorithm, items }), (value) => asBuffer(value as Uint8Array));
        digests.set(algorithm, run);
      }
      return run(data);
    },
    async close() {
      closed = true;
      // Batches still waiting for their turn of the event loop go out first.
      await new Promise((resolve) => setImmediate(resolve));
      while (running.size) await Promise.allSettled([...running]);
      await piscina.close();
    },
  };
}
