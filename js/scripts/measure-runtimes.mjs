#!/usr/bin/env node
// The runtime table's figures (docs/runtimes.md): each HTTP host of
// target/wasm/vector-service.wasm, one at a time, measured by the same
// clients on the same machine:
//
//   GET /health     wrk -t2 -c32 -d{seconds}s (req/s), wrk sharing the cores
//   POST /sort      100,000 values as JSON, {n} sequential requests from
//                   Node's fetch on one keep-alive connection (median, p90)
//
// Hosts: wasmtime serve, host-runner (target/release/host-runner, if built),
// jco serve (Node), workerd with a fresh instance per request and with
// instance reuse. Run after `cargo xtask build` and `npm install --no-save`;
// RUST_BACKTRACE is removed from the servers' environment.
//
// Usage: node scripts/measure-runtimes.mjs [--seconds 5] [--n 30]

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildEdge } from '../edge/build.mjs';
import { startWorkerd } from '../edge/workerd.mjs';
import { freePort, randomValues, repoRoot, targetDir, wasmPath } from '../test/helpers.mjs';
import { startServing, startWasmtimeServe, wasmtimeBin } from '../test/servers.mjs';
import { jcoBin } from './transpile.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seconds = opt('--seconds', 5);
const n = opt('--n', 30);
delete process.env.RUST_BACKTRACE;

const service = wasmPath('vector-service.wasm');
const hostRunner = join(targetDir, 'release', 'host-runner');
const sortBody = JSON.stringify(Array.from(randomValues(100_000, 0xbe_7c4n)));

function wrk(url) {
  const out = spawnSync('wrk', ['-t2', '-c32', `-d${seconds}s`, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.error}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out.stdout);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out.stdout);
  if (non2xx) throw new Error(`${url}: ${non2xx[1]} non-2xx answers`);
  return Number(rps[1]);
}

async function sortLatency(base) {
  const once = async () => {
    const t = performance.now();
    const res = await fetch(`${base}/sort`, { method: 'POST', body: sortBody, headers: { 'content-type': 'application/json' } });
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength < 100_000) throw new Error(`${base}/sort: ${res.status}`);
    return performance.now() - t;
  };
  for (let i = 0; i < 3; i++) await once(); // warm up
  const times = [];
  for (let i = 0; i < n; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(n / 2)], p90: times[Math.floor(n * 0.9)] };
}

async function startJcoServe(workDir) {
  const port = await freePort();
  const child = spawn(process.execPath, [jcoBin().path, 'serve', '--host', '127.0.0.1', '--port', String(port), '--jco-dir', workDir, service], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`jco serve did not start:\n${log}`)), 60_000);
    const onData = (c) => {
      log += c;
      if (log.includes('listening')) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  // jco serve forks a child node: stop the whole process group.
  const stop = async () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  return { base: `http://127.0.0.1:${port}`, stop };
}

function startHostRunner() {
  return startServing(hostRunner, ['serve', '--addr', '127.0.0.1:0', service]);
}

const scratch = mkdtempSync(join(tmpdir(), 'vecproc-measure-'));
const hosts = [
  ['wasmtime serve', () => startWasmtimeServe(wasmtimeBin(), service)],
  ...(existsSync(hostRunner) ? [['host-runner', startHostRunner]] : []),
  ['jco serve (Node)', () => startJcoServe(join(scratch, 'jco'))],
  ['workerd, fresh instance', async () => startWorkerd((await buildEdge({ wasm: service, out: join(scratch, 'fresh') })).config)],
  ['workerd, instanceReuse 1000', async () => startWorkerd((await buildEdge({ wasm: service, out: join(scratch, 'reuse'), instanceReuse: 1000 })).config)],
];

const rows = [];
try {
  console.error(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const [name, start] of hosts) {
    const server = await start();
    try {
      wrk(`${server.base}/health`); // warm up (JIT, caches)
      const rps = wrk(`${server.base}/health`);
      const sort = await sortLatency(server.base);
      rows.push({ name, rps, ...sort });
      console.error(`${name}: ${rps.toFixed(0)} req/s, /sort ${sort.median.toFixed(1)} ms`);
    } finally {
      await server.stop();
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.error(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`| host | GET /health (wrk -t2 -c32, ${seconds} s) | POST /sort, 100,000 values JSON (median / p90 of ${n}) |`);
console.log('|---|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${Math.round(r.rps).toLocaleString('en-US')} req/s | ${r.median.toFixed(1)} / ${r.p90.toFixed(1)} ms |`);
}
