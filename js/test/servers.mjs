// Servers for the suites and scripts: finding the pinned wasmtime, starting
// `wasmtime serve` or host-runner on a free port, stopping processes.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export { stopProcess } from '../edge/workerd.mjs';
import { stopProcess } from '../edge/workerd.mjs';

/**
 * The wasmtime binary: $VECPROC_WASMTIME if set, else ~/.cargo/bin/wasmtime,
 * else `wasmtime` on PATH; undefined when none is found.
 */
export function wasmtimeBin() {
  if (process.env.VECPROC_WASMTIME) return process.env.VECPROC_WASMTIME;
  const cargo = join(homedir(), '.cargo', 'bin', 'wasmtime');
  if (existsSync(cargo)) return cargo;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'wasmtime'))) return join(dir, 'wasmtime');
  }
  return undefined;
}

/**
 * Starts `wasmtime serve --addr 127.0.0.1:0 WASM` (the OS picks the port);
 * see startServing.
 */
export function startWasmtimeServe(bin, wasm) {
  return startServing(bin, ['serve', '--addr', '127.0.0.1:0', wasm]);
}

/**
 * Starts `bin args...`, a server that prints `wasmtime serve`'s
 * `Serving HTTP on http://127.0.0.1:PORT/` once it listens (wasmtime serve,
 * host-runner), and resolves then with `{ child, base, log(), stop() }`;
 * rejects with its output if it exits or stays silent for 60 s.
 */
export async function startServing(bin, args) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((ok) => {
    const timer = setTimeout(() => ok(undefined), 60_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /Serving HTTP on http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    };
    child.stdout.on('data', onData); // kept attached: the pipes are drained until exit
    child.stderr.on('data', onData);
    child.on('error', (err) => {
      log += String(err);
      clearTimeout(timer);
      ok(undefined);
    });
    child.on('exit', () => {
      clearTimeout(timer);
      ok(undefined);
    });
  });
  const stop = () => stopProcess(child);
  if (port === undefined) {
    await stop();
    throw new Error(`${bin} ${args.join(' ')} did not start:\n${log}`);
  }
  return { child, base: `http://127.0.0.1:${port}`, log: () => log, stop };
}
