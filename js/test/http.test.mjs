// The composed wasi:http/proxy service (target/wasm/vector-service.wasm)
// served by `jco serve` in Node: the HTTP API contract of PRODUCT.md, and the
// same answers as the real `wasmtime serve` gives (issue 5).
//
// `jco serve` forks a child node that outlives its parent, so it is started
// in its own process group (detached, like setsid) and the whole group is
// stopped at the end. `wasmtime serve` is a single process, stopped directly.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { jcoBin } from '../scripts/transpile.mjs';
import { startWasmtimeServe, stopProcess, wasmtimeBin } from './servers.mjs';
import { assertClose, assertStatistics, fixtures, freePort, prerequisite, repoRoot, wasmPath } from './helpers.mjs';

const service = wasmPath('vector-service.wasm');
const snake = (key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Starts `jco serve` on a free port; resolves once it is listening. */
async function startJcoServe(workDir) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [jcoBin().path, 'serve', '--host', '127.0.0.1', '--port', String(port), '--jco-dir', workDir, service];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const listening = await new Promise((ok) => {
      const timer = setTimeout(() => ok(false), 60_000);
      const onData = (chunk) => {
        log += chunk;
        if (log.includes('listening')) {
          clearTimeout(timer);
          ok(true);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', () => {
        clearTimeout(timer);
        ok(false);
      });
    });
    if (listening) return { child, base: `http://127.0.0.1:${port}` };
    stopGroup(child);
    if (attempt === 3 || !/EADDRINUSE/.test(log)) throw new Error(`jco serve did not start:\n${log}`);
  }
}

/** Stops the process group of `child` (jco serve and its forked server). */
function stopGroup(child) {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      return done();
    }
    const force = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, 3000);
    child.once('exit', () => {
      clearTimeout(force);
      try {
        process.kill(-child.pid, 'SIGKILL'); // the forked child, if it ignored SIGTERM
      } catch {}
      done();
    });
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      clearTimeout(force);
      done();
    }
  });
}

describe('HTTP API of vector-service.wasm under jco serve', { skip: prerequisite(!existsSync(service) && `${service} is not built`) }, () => {
  let server;
  let workDir;
  const call = async (path, { method = 'GET', body, contentType, accept } = {}) => {
    const headers = {};
    if (contentType) headers['content-type'] = contentType;
    if (accept) headers.accept = accept;
    return fetch(server.base + path, { method, body, headers });
  };
  const json = async (res, status) => {
    const text = await res.text();
    assert.equal(res.status, status, `status of ${res.url}: ${text}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    return JSON.parse(text);
  };

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'vecproc-jco-serve-'));
    server = await startJcoServe(workDir);
  });

  after(async () => {
    if (server) await stopGroup(server.child);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('GET /health', async () => {
    assert.deepEqual(await json(await call('/health'), 200), { status: 'ok' });
  });

  test('GET /compute?n=1000 and the default n', async () => {
    for (const { n, result } of fixtures.compute.filter(({ n }) => n === 1000 || n === 1_000_000)) {
      const path = n === 1_000_000 ? '/compute' : `/compute?n=${n}`;
      const body = await json(await call(path), 200);
      assert.equal(body.n, n);
      assertClose(body.result, result, fixtures.computeRelativeTolerance, path);
    }
  });

  test('POST /stats: JSON array, {"values": [...]}, and little-endian f64', async () => {
    const { values, statistics } = fixtures.basic;
    const bodies = [
      ['application/json', JSON.stringify(values)],
      ['application/json', JSON.stringify({ values })],
      ['application/octet-stream', new Uint8Array(Float64Array.from(values).buffer)],
    ];
    for (const [contentType, body] of bodies) {
      const stats = await json(await call('/stats', { method: 'POST', contentType, body }), 200);
      for (const key of fixtures.http.statsKeys) assert.ok(Object.hasOwn(stats, key), `stats has ${key}`);
      assertStatistics(stats, statistics, { absent: null, keyOf: snake });
    }
  });

  test('POST /stats of nothing: nulls', async () => {
    const stats = await json(await call('/stats', { method: 'POST', contentType: 'application/json', body: '[]' }), 200);
    assertStatistics(stats, fixtures.empty.statistics, { absent: null, keyOf: snake });
  });

  test('POST /sort, ?order=desc, and raw f64 out', async () => {
    const { values, ascending, descending } = fixtures.basic;
    const body = JSON.stringify(values);
    const contentType = 'application/json';
    assert.deepEqual(await json(await call('/sort', { method: 'POST', contentType, body }), 200), ascending);
    assert.deepEqual(await json(await call('/sort?order=asc', { method: 'POST', contentType, body }), 200), ascending);
    assert.deepEqual(await json(await call('/sort?order=desc', { method: 'POST', contentType, body }), 200), descending);
    const res = await call('/sort?order=desc', { method: 'POST', contentType, body, accept: 'application/octet-stream' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/octet-stream/);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual(Array.from(new Float64Array(bytes.buffer, 0, bytes.length / 8)), descending);
  });

  test('errors: status and {"error":{"code","message"}}', async () => {
    for (const { method, path, contentType, body, status, code, allow } of fixtures.http.errors) {
      const res = await call(path, { method, contentType, body });
      const what = `${method} ${path} ${body ?? ''}`;
      const payload = await json(res, status);
      assert.deepEqual(Object.keys(payload), ['error'], what);
      assert.equal(payload.error.code, code, what);
      assert.equal(typeof payload.error.message, 'string', what);
      assert.ok(payload.error.message.length > 0, what);
      if (allow) assert.equal(res.headers.get('allow'), allow, what);
    }
  });
});

// Both hosts run the same component, so every answer must be the same bytes.
// Compared: status, content-type, allow, and the body. Not compared: the
// headers each host's HTTP/1.1 server adds on its own, which are not part of
// the component's answer: Node's server under jco serve adds
// `connection: keep-alive` and `keep-alive: timeout=5`, wasmtime serve does
// not; both add `date`. (Also in js/README.md, "Tests".)
const wasmtime = wasmtimeBin();
describe(
  'jco serve and wasmtime serve give identical answers',
  { skip: prerequisite(!existsSync(service) && `${service} is not built`, !wasmtime && 'wasmtime not found ($VECPROC_WASMTIME, ~/.cargo/bin, PATH)') },
  () => {
    let jco;
    let wt;
    let workDir;

    before(async () => {
      workDir = mkdtempSync(join(tmpdir(), 'vecproc-jco-serve-'));
      const [a, b] = await Promise.allSettled([startJcoServe(workDir), startWasmtimeServe(wasmtime, service)]);
      if (a.status === 'fulfilled') jco = a.value;
      if (b.status === 'fulfilled') wt = b.value;
      if (a.status === 'rejected') throw a.reason;
      if (b.status === 'rejected') throw b.reason;
    });

    after(async () => {
      await Promise.all([jco && stopGroup(jco.child), wt && stopProcess(wt.child)]);
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    });

    const answer = async (base, { method, path, contentType, accept, body }) => {
      const headers = {};
      if (contentType) headers['content-type'] = contentType;
      if (accept) headers.accept = accept;
      const res = await fetch(base + path, { method, body, headers });
      return {
        status: res.status,
        contentType: res.headers.get('content-type'),
        allow: res.headers.get('allow'),
        body: Buffer.from(await res.arrayBuffer()),
      };
    };

    const { values } = fixtures.basic;
    const json = 'application/json';
    const octets = 'application/octet-stream';
    const f64 = () => new Uint8Array(Float64Array.from(values).buffer);
    const requests = [
      { method: 'GET', path: '/health' },
      { method: 'GET', path: '/compute?n=1000' },
      { method: 'GET', path: '/compute' },
      { method: 'POST', path: '/stats', contentType: json, body: JSON.stringify(values) },
      { method: 'POST', path: '/stats', contentType: json, body: JSON.stringify({ values }) },
      { method: 'POST', path: '/stats', contentType: octets, body: f64 },
      { method: 'POST', path: '/stats', contentType: json, body: '[]' },
      { method: 'POST', path: '/sort', contentType: json, body: JSON.stringify(values) },
      { method: 'POST', path: '/sort?order=desc', contentType: json, body: JSON.stringify(values) },
      { method: 'POST', path: '/sort', contentType: json, body: JSON.stringify(values), accept: octets },
      { method: 'POST', path: '/sort', contentType: octets, body: f64, accept: octets },
      ...fixtures.http.errors.map(({ method, path, contentType, body }) => ({ method, path, contentType, body })),
    ];

    for (const request of requests) {
      const what = `${request.method} ${request.path}${request.contentType ? ` (${request.contentType})` : ''}${
        request.accept ? ` accept ${request.accept}` : ''
      }${typeof request.body === 'string' ? ` ${request.body}` : ''}`;
      test(what, async () => {
        const ask = (base) => answer(base, { ...request, body: typeof request.body === 'function' ? request.body() : request.body });
        const [fromJco, fromWasmtime] = await Promise.all([ask(jco.base), ask(wt.base)]);
        assert.equal(fromJco.status, fromWasmtime.status, `${what}: status`);
        assert.equal(fromJco.contentType, fromWasmtime.contentType, `${what}: content-type`);
        assert.equal(fromJco.allow, fromWasmtime.allow, `${what}: allow`);
        assert.ok(
          fromJco.body.equals(fromWasmtime.body),
          `${what}: body differs\n  jco serve:      ${fromJco.body.toString('hex')}\n  wasmtime serve: ${fromWasmtime.body.toString('hex')}`,
        );
        assert.ok(fromJco.body.length > 0, `${what}: empty body`);
      });
    }
  },
);
