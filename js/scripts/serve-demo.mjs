#!/usr/bin/env node
// A small static file server for the browser demo: serves the js/ directory
// (demo page, API module, transpiled component, preview2-shim), and the
// wasm-bindgen build `<target>/web/web/` under /web/, on 127.0.0.1
// with the right MIME types (application/wasm for WebAssembly, so streaming
// compilation works). Used by `cargo xtask demo`, `npm run demo` and the
// Chromium test.
//
// It also sends cross-origin-isolation headers (COOP/COEP): the page loads
// only same-origin files, and isolation gives `performance.now()` its fine
// resolution, which the demo's timings need.
//
// Usage: node scripts/serve-demo.mjs [PORT] [--host HOST] [--quiet]
//        (PORT also from $PORT; default 8081; 0 picks a free port)

import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { targetDir } from './paths.mjs';

export const jsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** URL prefixes served from outside js/: the wasm-bindgen browser build. */
const MOUNTS = [['/web/', join(targetDir, 'web', 'web')]];

const MIME = new Map([
  ['.html', 'text/html; charset=utf-8'],
  ['.js', 'text/javascript; charset=utf-8'],
  ['.mjs', 'text/javascript; charset=utf-8'],
  ['.css', 'text/css; charset=utf-8'],
  ['.json', 'application/json; charset=utf-8'],
  ['.map', 'application/json; charset=utf-8'],
  ['.wasm', 'application/wasm'],
  ['.svg', 'image/svg+xml'],
  ['.png', 'image/png'],
  ['.ico', 'image/x-icon'],
  ['.ts', 'text/plain; charset=utf-8'],
  ['.md', 'text/markdown; charset=utf-8'],
  ['.txt', 'text/plain; charset=utf-8'],
]);

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

function send(res, status, body, headers = {}) {
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

/** Maps a URL path to a file under `root`, or `null` if it would leave it. */
function fileFor(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  const file = resolve(root, `.${path}`);
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function handle(root, req, res, log) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  }
  if (url.pathname === '/') return send(res, 302, 'see /demo/\n', { location: '/demo/' });
  const mount = MOUNTS.find(([prefix]) => url.pathname.startsWith(prefix));
  let file = mount ? fileFor(mount[1], url.pathname.slice(mount[0].length - 1)) : fileFor(root, url.pathname);
  if (file === null) return send(res, 400, 'bad path\n');
  let info = await stat(file).catch(() => null);
  if (info?.isDirectory()) {
    if (!url.pathname.endsWith('/')) return send(res, 301, 'moved\n', { location: `${url.pathname}/${url.search}` });
    file = join(file, 'index.html');
    info = await stat(file).catch(() => null);
  }
  if (!info?.isFile()) {
    log(`404 ${url.pathname}`);
    return send(res, 404, `not found: ${url.pathname}\n`);
  }
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'content-type': MIME.get(extname(file).toLowerCase()) ?? 'application/octet-stream',
    'content-length': info.size,
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}

/**
 * Starts the server. Resolves to `{ url, port, server, close() }` once it
 * listens; `url` is the demo page's address.
 */
export function startDemoServer({ port = 0, host = '127.0.0.1', root = jsRoot, log = () => {} } = {}) {
  const server = createServer((req, res) => {
    handle(root, req, res, log).catch((err) => {
      log(`500 ${req.url}: ${err.message}`);
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      const { port: actual } = server.address();
      const shownHost = host.includes(':') ? `[${host}]` : host;
      ok({
        server,
        port: actual,
        url: `http://${shownHost}:${actual}/demo/`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function parseArgs(argv) {
  const opts = { port: process.env.PORT === undefined ? 8081 : Number(process.env.PORT), host: '127.0.0.1', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--host') opts.host = argv[++i];
    else if (arg === '--port') opts.port = Number(argv[++i]);
    else if (arg === '--quiet') opts.quiet = true;
    else if (/^\d+$/.test(arg)) opts.port = Number(arg);
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: serve-demo.mjs [PORT] [--host HOST] [--quiet]`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('port must be in 0..65535');
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const log = opts.quiet ? () => {} : (line) => console.error(line);
    const { url, close } = await startDemoServer({ ...opts, log });
    if (!existsSync(join(jsRoot, 'gen', 'vector-processor', 'vector-processor.js'))) {
      console.error('warning: js/gen/vector-processor/ is missing: run `npm run transpile` (or `cargo xtask demo`)');
    }
    console.log(`Serving the demo on ${url} (Ctrl-C stops)`);
    const stop = () => close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    console.error(`serve-demo: ${err.message}`);
    process.exit(1);
  }
}
