// The composed service in workerd (js/edge/: jco instantiation output behind
// a Workers fetch handler), held to the answers of the real `wasmtime serve`:
// every route, every error status, 1,000,000 values through /stats and /sort
// in JSON and binary, the 413 for a declared and for a chunked body over the
// limit. Then the misbehaving fixture: a trap is answered 500 and the next
// request is served; a fresh instance per request, or reuse when configured.
//
// Compared: status, content-type, allow and the body bytes. Not compared:
// headers each server adds itself (`date`; workerd's `content-length` or
// chunked framing; `connection`).

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { buildEdge } from '../edge/build.mjs';
import { DEFAULT_MAX_REQUEST_BODY_BYTES } from '../edge/limits.js';
import { startWorkerd } from '../edge/workerd.mjs';
import { fixtures, prerequisite, randomValues, repoRoot, wasmPath } from './helpers.mjs';
import { startWasmtimeServe, wasmtimeBin } from './servers.mjs';

const service = wasmPath('vector-service.wasm');
const misbehaving = wasmPath(join('fixtures', 'misbehaving.wasm'));
const wasmtime = wasmtimeBin();
const skip = prerequisite(
  !existsSync(service) && `${service} is not built`,
  !existsSync(misbehaving) && `${misbehaving} is not built`,
  !wasmtime && 'wasmtime not found ($VECPROC_WASMTIME, ~/.cargo/bin, PATH)',
);

const LIMIT = DEFAULT_MAX_REQUEST_BODY_BYTES; // the guest's own, as built

/** One answer, reduced to what both servers must agree on. */
async function answer(base, { method = 'GET', path, contentType, accept, body }) {
  const headers = {};
  if (contentType) headers['content-type'] = contentType;
  if (accept) headers.accept = accept;
  const res = await fetch(base + path, { method, body, headers, signal: AbortSignal.timeout(60_000) });
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    allow: res.headers.get('allow'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

/**
 * A POST whose body is `declared` bytes by its content-length (or chunked
 * when `declared` is undefined), of which `send` bytes are written; resolves
 * with the answer as soon as it arrives, then drops the connection.
 */
function rawPost(base, path, { declared, send }) {
  const url = new URL(path, base);
  return new Promise((ok, fail) => {
    const headers = { 'content-type': 'application/octet-stream' };
    if (declared !== undefined) headers['content-length'] = String(declared);
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        ok({ status: res.statusCode, contentType: res.headers['content-type'] ?? null, allow: res.headers.allow ?? null, body: Buffer.concat(chunks) });
        req.destroy();
      });
      res.on('error', fail);
    });
    req.on('error', (err) => {
      // The server may close the connection while the body is still going.
      if (!['EPIPE', 'ECONNRESET'].includes(err.code)) fail(err);
    });
    req.flushHeaders(); // sent even when no body byte follows
    const chunk = Buffer.alloc(1 << 20, 0);
    let left = send;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      if (declared === undefined) req.end();
    };
    pump();
  });
}

const sameAnswer = (what, edge, reference) => {
  assert.equal(edge.status, reference.status, `${what}: status`);
  assert.equal(edge.contentType, reference.contentType, `${what}: content-type`);
  assert.equal(edge.allow, reference.allow, `${what}: allow`);
  assert.ok(
    edge.body.equals(reference.body),
    `${what}: body differs\n  workerd:        ${edge.body.subarray(0, 300)}\n  wasmtime serve: ${reference.body.subarray(0, 300)}`,
  );
};

describe('vector-service.wasm in workerd answers as wasmtime serve does', { skip }, () => {
  let scratch;
  let edge;
  let reference;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'vecproc-edge-'));
    const { config } = await buildEdge({ wasm: service, out: join(scratch, 'service') });
    const started = await Promise.allSettled([startWorkerd(config), startWasmtimeServe(wasmtime, service)]);
    [edge, reference] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });

  after(async () => {
    await Promise.all([edge?.stop(), reference?.stop()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const { values } = fixtures.basic;
  const json = 'application/json';
  const octets = 'application/octet-stream';
  const f64 = (xs) => new Uint8Array(Float64Array.from(xs).buffer);
  const million = randomValues(1_000_000, 0xed9e_5eedn);
  const millionJson = JSON.stringify(Array.from(million));
  const requests = [
    { path: '/health' },
    { path: '/compute?n=1000' },
    { path: '/compute' },
    { method: 'POST', path: '/stats', contentType: json, body: JSON.stringify(values) },
    { method: 'POST', path: '/stats', contentType: json, body: JSON.stringify({ values }) },
    { method: 'POST', path: '/stats', contentType: octets, body: f64(values) },
    { method: 'POST', path: '/stats', contentType: json, body: '[]' },
    { method: 'POST', path: '/stats', body: new TextEncoder().encode('[1, 2]'), label: 'no content-type: JSON' },
    { method: 'POST', path: '/stats', contentType: 'application/vnd.api+json; charset=utf-8', body: '[3]' },
    { method: 'POST', path: '/stats', contentType: octets, body: new Uint8Array(0) },
    { method: 'POST', path: '/sort', contentType: json, body: JSON.stringify(values) },
    { method: 'POST', path: '/sort?order=desc', contentType: json, body: JSON.stringify(values) },
    { method: 'POST', path: '/sort', contentType: json, body: JSON.stringify(values), accept: octets },
    { method: 'POST', path: '/sort?order=asc', contentType: octets, body: f64(values), accept: octets },
    ...fixtures.http.errors,
    { method: 'POST', path: '/health' },
    { method: 'GET', path: '/sort' },
    { method: 'PUT', path: '/compute' },
    { path: '/health/' },
    { path: '/' },
    { path: '/compute?n=5&x=1' },
    { path: '/compute?n=' },
    { method: 'POST', path: '/stats', contentType: json, body: '{"vals": [1]}' },
    { method: 'POST', path: '/stats', contentType: json, body: '[1] x' },
    { method: 'POST', path: '/stats', contentType: octets, body: f64([1, NaN]) },
    { method: 'POST', path: '/sort', contentType: 'application/x-www-form-urlencoded', body: 'a=1' },
    // 1,000,000 values, both encodings, both routes, both output formats.
    { method: 'POST', path: '/stats', contentType: json, body: millionJson, label: '1,000,000 values as JSON' },
    { method: 'POST', path: '/stats', contentType: octets, body: f64(million), label: '1,000,000 values as f64' },
    { method: 'POST', path: '/sort', contentType: json, body: millionJson, label: '1,000,000 values as JSON' },
    { method: 'POST', path: '/sort?order=desc', contentType: octets, body: f64(million), accept: octets, label: '1,000,000 values as f64' },
    { method: 'POST', path: '/sort', contentType: octets, body: f64(million), label: '1,000,000 values as f64, JSON out' },
  ];

  const statuses = new Set();
  for (const r of requests) {
    const what = `${r.method ?? 'GET'} ${r.path}${r.contentType ? ` (${r.contentType})` : ''}${r.accept ? ` accept ${r.accept}` : ''} ${
      r.label ?? (typeof r.body === 'string' ? r.body : r.body ? `${r.body.length} bytes` : '')
    }`;
    test(what, async () => {
      const [fromEdge, fromReference] = await Promise.all([answer(edge.base, r), answer(reference.base, r)]);
      sameAnswer(what, fromEdge, fromReference);
      assert.ok(fromEdge.body.length > 0, `${what}: empty body`);
      statuses.add(fromEdge.status);
    });
  }

  test('413: a declared content-length over the limit, answered before the body is sent', async () => {
    const declared = LIMIT + 1;
    const [fromEdge, fromReference] = await Promise.all(
      [edge, reference].map((s) => rawPost(s.base, '/stats', { declared, send: 0 })),
    );
    sameAnswer('declared', fromEdge, fromReference);
    assert.equal(fromEdge.status, 413);
    statuses.add(fromEdge.status);
  });

  test('413: a chunked body that grows past the limit', async () => {
    const send = LIMIT + 8;
    const [fromEdge, fromReference] = await Promise.all(
      [edge, reference].map((s) => rawPost(s.base, '/stats', { declared: undefined, send })),
    );
    sameAnswer('chunked', fromEdge, fromReference);
    assert.equal(fromEdge.status, 413);
  });

  test('a body of exactly the limit is read, not refused', async () => {
    // LIMIT bytes of zeros: 8,388,608 f64 zeros, a valid binary body.
    const body = new Uint8Array(LIMIT);
    const [fromEdge, fromReference] = await Promise.all(
      [edge, reference].map((s) => answer(s.base, { method: 'POST', path: '/stats', contentType: octets, body })),
    );
    sameAnswer('exactly the limit', fromEdge, fromReference);
    assert.equal(fromEdge.status, 200);
    assert.equal(JSON.parse(fromEdge.body).count, LIMIT / 8);
  });

  test('every status of the API was seen', () => {
    for (const status of [200, 400, 404, 405, 413, 415]) assert.ok(statuses.has(status), `no ${status} answer`);
  });

  test('the service is still up after all of it', async () => {
    const res = await fetch(`${edge.base}/health`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"status":"ok"}');
  });
});

describe('the misbehaving fixture in workerd', { skip }, () => {
  let scratch;
  let fresh;
  let reused;
  let reference;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'vecproc-edge-fixture-'));
    const [a, b] = await Promise.all([
      buildEdge({ wasm: misbehaving, out: join(scratch, 'fresh') }),
      buildEdge({ wasm: misbehaving, out: join(scratch, 'reused'), instanceReuse: 3 }),
    ]);
    const started = await Promise.allSettled([startWorkerd(a.config), startWorkerd(b.config), startWasmtimeServe(wasmtime, misbehaving)]);
    [fresh, reused, reference] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });

  after(async () => {
    await Promise.all([fresh?.stop(), reused?.stop(), reference?.stop()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const text = async (base, path) => {
    const res = await fetch(base + path, { signal: AbortSignal.timeout(30_000) });
    return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
  };

  for (const path of ['/trap', '/no-set']) {
    test(`${path}: 500 like wasmtime serve, and the next request is served`, async () => {
      const [fromEdge, fromReference] = await Promise.all([text(fresh.base, path), text(reference.base, path)]);
      assert.equal(fromEdge.status, 500);
      assert.equal(fromEdge.status, fromReference.status);
      assert.equal(fromEdge.contentType, fromReference.contentType);
      assert.match(fromEdge.body, /<h1>500 Internal Server Error<\/h1>/);
      assert.deepEqual(await text(fresh.base, '/ok'), { status: 200, contentType: 'text/plain', body: 'ok\n' });
    });
  }

  test('/trap-after-set: 500 (the body is buffered, so nothing was sent yet)', async () => {
    const res = await text(fresh.base, '/trap-after-set');
    assert.equal(res.status, 500);
    assert.deepEqual(await text(fresh.base, '/ok'), { status: 200, contentType: 'text/plain', body: 'ok\n' });
  });

  test('the trap is logged', async () => {
    await text(fresh.base, '/trap');
    await new Promise((r) => setTimeout(r, 200));
    assert.match(fresh.log(), /fixture trap before set/);
    assert.match(fresh.log(), /error: request \d+: RuntimeError: unreachable/);
  });

  test('method, path and query, and headers reach the guest', async () => {
    const res = await fetch(`${fresh.base}/echo?a=1&b=two`, { method: 'PUT', headers: { 'x-one': '1', 'x-two': 'zwei' }, body: 'payload' });
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /^method=Method::Put$/m);
    assert.match(body, /^path=Some\("\/echo\?a=1&b=two"\)$/m);
    assert.match(body, /^x-headers=x-one: 1; x-two: zwei$/m);
    assert.match(body, /^headers=.*content-length/m);
  });

  test('a fresh instance per request by default: the counter never counts past 1', async () => {
    const counts = [];
    for (let i = 0; i < 4; i++) counts.push((await text(fresh.base, '/counter')).body);
    assert.deepEqual(counts, ['1\n', '1\n', '1\n', '1\n']);
    assert.equal((await text(fresh.base, '/residue')).body, 'clean\n');
    assert.equal((await text(fresh.base, '/residue')).body, 'clean\n');
  });

  test('instanceReuse: 3 serves three requests per instance; a trap retires it', async () => {
    const counts = [];
    for (let i = 0; i < 5; i++) counts.push((await text(reused.base, '/counter')).body);
    assert.deepEqual(counts, ['1\n', '2\n', '3\n', '1\n', '2\n']);
    assert.equal((await text(reused.base, '/trap')).status, 500);
    assert.equal((await text(reused.base, '/counter')).body, '1\n');
  });
});
