// The console's web pages: one page at `/` and its assets under `/console/`, all served by the hub itself (agency
// networks are closed: no CDN). The page scripts (dashboards/web/, strict TypeScript) are bundled by esbuild once per
// hub process, into memory; ECharts is served from its own package. The Content-Security-Policy admits scripts and
// styles from this origin only, so nothing a partner or a message carries can run in an operator's browser.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SwxError } from '../engine/errors.ts';
import { accessOf } from './access.ts';

interface Asset { type: string; body: Buffer }

const webFolder = fileURLToPath(new URL('./web/', import.meta.url));

export const contentSecurityPolicy = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self'",
  "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

/** The languages the pages are written in; the first is the default. */
const languages = ['zh-TW', 'en'] as const;

/** The language Accept-Language prefers among ours (by its q values); Traditional Chinese when it names none of them. */
export function pageLanguage(acceptLanguage: string | undefined): (typeof languages)[number] {
  const ranked = (acceptLanguage ?? '').split(',').map((part, order) => {
    const [tag = '', ...params] = part.trim().split(';');
    const q = Number(params.map((param) => /^\s*q=([\d.]+)\s*$/.exec(param)?.[1]).find((value) => value !== undefined) ?? 1);
    return { tag: tag.toLowerCase(), q: Number.isFinite(q) ? q : 0, order };
  }).filter((entry) => entry.tag && entry.q > 0).sort((a, b) => b.q - a.q || a.order - b.order);
  for (const { tag } of ranked) {
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-TW';
  }
  return 'zh-TW';
}

function page(lang: string): string {
  // No inline script or style: the CSP forbids both.
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swx</title>
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body>
<main id="app" aria-live="polite"><p>swx</p></main>
<noscript>The swx console needs JavaScript.</noscript>
</body>
</html>
`;
}

let assets: Promise<Map<string, Asset>> | undefined;

/** The bundled page scripts, the style sheet and ECharts: made once per process, shared by both listeners. */
export function consoleAssets(): Promise<Map<string, Asset>> {
  assets ??= (async () => {
    const bundled = await build({
      entryPoints: [`${webFolder}main.ts`], bundle: true, write: false, format: 'esm', target: 'es2022', minify: true,
      sourcemap: false, legalComments: 'none', logLevel: 'silent',
    });
    const echarts = createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js');
    return new Map<string, Asset>([
      ['console.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(bundled.outputFiles[0]!.contents) }],
      ['console.css', { type: 'text/css; charset=utf-8', body: await readFile(`${webFolder}console.css`) }],
      ['echarts.js', { type: 'text/javascript; charset=utf-8', body: await readFile(echarts) }],
    ]);
  })();
  return assets;
}

function secured(reply: FastifyReply): FastifyReply {
  return reply.headers({
    'content-security-policy': contentSecurityPolicy,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
  });
}

type App = FastifyInstance<any, any, any, any, any>;

/** Serves the page at `/` and its assets under `/console/`. */
export async function mountConsolePages(app: App): Promise<void> {
  const files = await consoleAssets();
  app.get('/', { schema: { hide: true }, config: { access: accessOf('GET', '/').access } }, async (request: FastifyRequest, reply: FastifyReply) =>
    secured(reply).header('cache-control', 'no-store').header('vary', 'accept-language').type('text/html; charset=utf-8')
      .send(page(pageLanguage(request.headers['accept-language']))));
  app.get('/console/:asset', { schema: { hide: true }, config: { access: accessOf('GET', '/console/:asset').access } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const name = (request.params as { asset: string }).asset;
    const file = files.get(name);
    if (!file) throw new SwxError('SWX_NOT_FOUND', `GET /console/${name.slice(0, 100)} is not served here`);
    return secured(reply).header('cache-control', 'no-cache').type(file.type).send(file.body);
  });
}
