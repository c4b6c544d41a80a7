// Serves a jco-transpiled `wasi:http/incoming-handler` component from a
// Workers-style `fetch(request, env, ctx)` handler (workerd, Cloudflare
// Workers). See js/edge/README.md for the manual.
//
// The component must be transpiled with `jco transpile --instantiation async`
// (workerd refuses to compile WebAssembly from bytes, so every core module is
// a config module, `wasm = embed`, handed over through `getCoreModule`), and
// this file must be bundled for the browser platform so that
// `@bytecodealliance/preview2-shim` resolves to its browser build (the Node
// build runs I/O in worker threads, which workerd does not have).
//
// From the shim this uses `InMemoryHttpClient` (a Web `Request` in, a Web
// `Response` out) and `WASIShim` (the import object). What the shim does not
// do, this file adds: the request-body limit (413 before the guest runs),
// a 500 answer for a trap or a guest that does not answer, and the instance
// policy (a fresh instance per request by default).

import { InMemoryHttpClient } from '@bytecodealliance/preview2-shim/http';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';

import { DEFAULT_MAX_REQUEST_BODY_BYTES } from './limits.js';

export { DEFAULT_MAX_REQUEST_BODY_BYTES };

/**
 * The 413 answer: the same status, content type and JSON body the vecproc
 * `http-api` guest gives (`vecproc_core::api::too_large`).
 */
export function payloadTooLarge(limit) {
  const body = JSON.stringify({
    error: { code: 'payload_too_large', message: `request body is larger than the limit of ${limit} bytes` },
  });
  return new Response(body, { status: 413, headers: { 'content-type': 'application/json' } });
}

/**
 * The 500 answer for a guest that failed before answering: the page
 * `wasmtime serve` sends in the same case, with this host's name.
 */
export function internalServerError() {
  const page =
    '<!doctype html>\n<html>\n<head>\n    <title>500 Internal Server Error</title>\n</head>\n<body>\n' +
    '    <center>\n        <h1>500 Internal Server Error</h1>\n        <hr>\n        workerd\n    </center>\n</body>\n</html>';
  return new Response(page, { status: 500, headers: { 'content-type': 'text/html; charset=UTF-8' } });
}

/** The `incoming-handler` export of an instance, versioned or not. */
function incomingHandlerOf(instance) {
  const key = Object.keys(instance).find((k) => k === 'incomingHandler' || k.startsWith('wasi:http/incoming-handler'));
  const handler = key && instance[key];
  if (!handler || typeof handler.handle !== 'function') {
    throw new TypeError(`the component does not export wasi:http/incoming-handler (exports: ${Object.keys(instance).join(', ')})`);
  }
  return handler;
}

/**
 * Reads the whole body, or returns `undefined` as soon as it is longer than
 * `limit` bytes (the rest is not read). The shim hands the guest a buffered
 * body anyway, so reading it here costs nothing extra and enforces the limit
 * for chunked bodies too.
 */
async function readBody(body, limit) {
  const reader = body.getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.byteLength;
    if (length > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Resolves after every pending microtask (and so every promise the guest's answer chains) has run. */
const nextMacrotask = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * A Workers module (`export default createFetchHandler(...)`) serving a
 * transpiled component.
 *
 * - `instantiate`: the `instantiate(getCoreModule, imports)` function of
 *   `jco transpile --instantiation async` output.
 * - `getCoreModule(name)`: the compiled `WebAssembly.Module` for each core
 *   module file jco wrote (`x.core.wasm`, `x.core2.wasm`, ...), usually
 *   imported as config modules.
 * - `options`: an object, or a function of the worker's `env` returning one
 *   (read once, on the first request):
 *   - `maxRequestBodyBytes` (default 64 MiB): a larger declared
 *     `content-length` gets 413 before the guest runs; a chunked body is cut
 *     off and answered 413 as soon as it passes the limit.
 *   - `instanceReuse` (default 1): how many requests one instance serves.
 *     1 is a fresh instance per request, the isolation `wasmtime serve`
 *     gives; N > 1 lets a guest's memory carry over from one request to the
 *     next (faster, not isolated). A trap always retires the instance.
 *   - `imports`: the WASI import object (default: preview2-shim's browser
 *     build through `new WASIShim().getImportObject()`).
 *   - `log(message)`: where failures are reported (default `console.error`).
 */
export function createFetchHandler({ instantiate, getCoreModule, options = {} }) {
  let config;
  let cached; // { instance: Promise<instance>, uses: number } when reusing
  let served = 0;

  const configure = (env) => {
    const raw = typeof options === 'function' ? options(env ?? {}) : options;
    const maxRequestBodyBytes = Number(raw.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES);
    const instanceReuse = Number(raw.instanceReuse ?? 1);
    if (!Number.isSafeInteger(maxRequestBodyBytes) || maxRequestBodyBytes < 0) {
      throw new RangeError(`maxRequestBodyBytes must be a non-negative integer, not ${raw.maxRequestBodyBytes}`);
    }
    if (!Number.isSafeInteger(instanceReuse) || instanceReuse < 1) {
      throw new RangeError(`instanceReuse must be an integer of at least 1, not ${raw.instanceReuse}`);
    }
    const imports = raw.imports ?? new WASIShim().getImportObject();
    const log = raw.log ?? ((message) => console.error(message));
    return { maxRequestBodyBytes, instanceReuse, imports, log };
  };

  // async: a synchronous throw from instantiate() becomes a rejection, answered 500.
  const newInstance = async () => instantiate(getCoreModule, config.imports);

  /** An instance for one request, and whether it may be kept afterwards. */
  const acquire = () => {
    if (config.instanceReuse === 1) return newInstance();
    if (!cached || cached.uses >= config.instanceReuse) cached = { instance: newInstance(), uses: 0 };
    cached.uses += 1;
    return cached.instance;
  };

  const retire = (instance) => {
    if (cached && cached.instance === instance) cached = undefined;
  };

  return {
    async fetch(request, env, _ctx) {
      config ??= configure(env);
      const id = ++served;
      const limit = config.maxRequestBodyBytes;

      // 413 before the guest runs when the declared length is over the limit.
      const declared = request.headers.get('content-length');
      if (declared !== null && Number(declared) > limit) return payloadTooLarge(limit);
      let body;
      if (request.body && request.method !== 'GET' && request.method !== 'HEAD') {
        body = await readBody(request.body, limit);
        if (body === undefined) return payloadTooLarge(limit);
      }
      const buffered = new Request(request.url, { method: request.method, headers: request.headers, body });

      const pending = acquire();
      let instance;
      try {
        instance = await pending;
        const exported = incomingHandlerOf(instance);
        let returned;
        const guestReturned = new Promise((resolve) => (returned = resolve));
        const client = new InMemoryHttpClient({
          handle(incoming, responseOut) {
            try {
              return exported.handle(incoming, responseOut);
            } finally {
              returned();
            }
          },
        });
        const answer = client.fetch(buffered);
        // The guest runs synchronously; once it has returned, an answer
        // whose body it finished is ready after the pending microtasks. One
        // that is still pending never will be (the body was left open).
        const unfinished = guestReturned.then(nextMacrotask).then(() => 'unfinished');
        const response = await Promise.race([answer, unfinished]);
        if (response === 'unfinished') {
          retire(pending);
          config.log(`error: request ${id}: the guest returned without finishing its response body`);
          return internalServerError();
        }
        return response;
      } catch (err) {
        // A trap (WebAssembly.RuntimeError), a guest that returned without
        // answering, or a failed instantiation. The instance is never reused.
        retire(pending);
        config.log(`error: request ${id}: ${err?.stack ?? err}`);
        return internalServerError();
      }
    },
  };
}
