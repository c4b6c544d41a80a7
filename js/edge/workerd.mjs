// Starting and stopping the pinned workerd binary (npm `workerd`, from
// js/node_modules) on a config written by build.mjs: for the tests and
// serve.mjs (`cargo xtask edge`).
//
// Readiness comes from workerd itself: `--control-fd 3` makes it write
// `{"event":"listen","socket":"http","port":N}` on fd 3 once the socket
// listens, so `--socket-addr http=127.0.0.1:0` lets the OS pick a free port
// with no race.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const jsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The workerd executable npm installed (`node_modules/.bin/workerd`). */
export function workerdBin() {
  const bin = join(jsRoot, 'node_modules', '.bin', 'workerd');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm install --no-save\` in ${jsRoot}`);
  return bin;
}

/**
 * Starts `workerd serve CONFIG --socket-addr http=ADDR --control-fd 3` and
 * resolves once it listens, with `{ child, port, base, log(), stop() }`.
 * `log()` is everything workerd wrote to stdout and stderr so far.
 */
export async function startWorkerd(config, { addr = '127.0.0.1:0', timeoutMs = 30_000 } = {}) {
  const args = ['serve', config, '--socket-addr', `http=${addr}`, '--control-fd', '3'];
  const child = spawn(workerdBin(), args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const stop = () => stopProcess(child);
  let control = '';
  const port = await new Promise((ok) => {
    const timer = setTimeout(() => ok(undefined), timeoutMs);
    child.stdio[3].on('data', (chunk) => {
      control += chunk;
      for (const line of control.split('\n')) {
        if (!line.trim()) continue;
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          continue; // a partial line; the rest comes with the next chunk
        }
        if (event.event === 'listen' && event.socket === 'http') {
          clearTimeout(timer);
          ok(event.port);
        }
      }
    });
    child.on('error', (err) => {
      output += String(err);
      clearTimeout(timer);
      ok(undefined);
    });
    child.on('exit', () => {
      clearTimeout(timer);
      ok(undefined);
    });
  });
  if (port === undefined) {
    await stop();
    throw new Error(`workerd did not start:\n${output}`);
  }
  const host = addr.slice(0, addr.lastIndexOf(':'));
  return { child, port, base: `http://${host}:${port}`, log: () => output, stop };
}

/** Stops one process: SIGTERM, then SIGKILL after 3 s; resolves when it has exited. */
export function stopProcess(child) {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return done();
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(force);
      done();
    });
    child.kill('SIGTERM');
  });
}
