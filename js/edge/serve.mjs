#!/usr/bin/env node
// Builds the worker for a `wasi:http/incoming-handler` component (build.mjs)
// and serves it with the pinned workerd (workerd.mjs) until interrupted,
// printing `Serving HTTP on http://ADDR/` on stderr once workerd listens, as
// `wasmtime serve` and host-runner do; workerd's own output follows on
// stderr. `cargo xtask edge` runs this.
//
// Usage: node edge/serve.mjs --wasm COMPONENT --out DIR [--addr HOST:PORT]
//          [--max-request-body-bytes N] [--instance-reuse N]
// The request-body limit defaults to VECPROC_MAX_BODY_BYTES (the guest's
// build-time limit) when that is set, else the API's 64 MiB.

import { buildEdge, parseArgs } from './build.mjs';
import { DEFAULT_MAX_REQUEST_BODY_BYTES } from './limits.js';
import { startWorkerd } from './workerd.mjs';

let server;
try {
  const opts = { addr: '127.0.0.1:8787', ...parseArgs(process.argv.slice(2)) };
  if (opts.maxRequestBodyBytes === undefined) {
    const fromEnv = process.env.VECPROC_MAX_BODY_BYTES;
    opts.maxRequestBodyBytes = fromEnv === undefined ? DEFAULT_MAX_REQUEST_BODY_BYTES : Number(fromEnv.trim());
    if (!Number.isSafeInteger(opts.maxRequestBodyBytes)) throw new Error(`VECPROC_MAX_BODY_BYTES=${JSON.stringify(fromEnv)} is not a byte count`);
  }
  const { config } = await buildEdge(opts);
  server = await startWorkerd(config, { addr: opts.addr });
} catch (err) {
  console.error(`edge: ${err.message}`);
  process.exit(1);
}
process.stderr.write(server.log());
server.child.stdout.pipe(process.stderr);
server.child.stderr.pipe(process.stderr);
console.error(`Serving HTTP on ${server.base}/`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    stopping = true;
    await server.stop();
    process.exit(0);
  });
}
server.child.on('exit', (code, signal) => {
  if (stopping) return;
  console.error(`edge: workerd exited (${signal ?? `code ${code}`})`);
  process.exit(code ?? 1);
});
