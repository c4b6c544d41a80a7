// The WASI command target/wasm/vecproc.wasm (crate vecproc-cli, wasm32-wasip1)
// on every runtime that is installed: `wasmtime run`, Node's `node:wasi`,
// Wasmer's WASI layer through `@wasmer/sdk`, the native `wasmer` CLI when
// $VECPROC_WASMER names one (`cargo xtask test` sets it), and the
// native build (target/debug/vecproc, or $VECPROC_CLI). Every case must give
// the same exit code, stdout and stderr bytes on all of them, and the
// statistics must be the body `POST /stats` answers with under
// `wasmtime serve`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import v8 from 'node:v8';
import { WASI } from 'node:wasi';

import { fixtures, prerequisite, randomValues, repoRoot, targetDir, wasmPath } from './helpers.mjs';
import { startWasmtimeServe, wasmtimeBin } from './servers.mjs';

// Node 20's node:wasi aborts the process (a fatal error or SIGSEGV in
// `WASI::FdRead`) once V8 optimises its fd_read into a fast API call, which
// reading a 19 MB stdin does; without fast API calls it is correct.
v8.setFlagsFromString('--no-turbo-fast-api-calls');

const command = wasmPath('vecproc.wasm');
const service = wasmPath('vector-service.wasm');
const native = process.env.VECPROC_CLI ?? join(targetDir, 'debug', 'vecproc');
const wasmtime = wasmtimeBin();
const wasmerCli = process.env.VECPROC_WASMER;

/** Where a runner's guest finds the input file of a file case. */
const GUEST_DIR = '/workspace'; // the only place @wasmer/sdk sandboxes accept files
const OUTPUT_LIMIT = 64 * 1024 * 1024;

/** Runs a process to its end: `{ code, stdout, stderr }` as Buffers. */
function runProcess(bin, args, stdin) {
  return new Promise((ok, fail) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', fail);
    child.on('close', (code, signal) =>
      ok({ code: code ?? `signal ${signal}`, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }),
    );
    child.stdin.on('error', () => {}); // a command that exits before reading all of stdin
    child.stdin.end(stdin);
  });
}

/**
 * The runtimes. Each runs the command with `args` and `stdin`; `file`, when
 * given, is `{ name, content }`: the runner makes it readable to the guest
 * and appends its path (as the guest sees it) to the arguments.
 */
function runners(scratch) {
  const hostFile = (file) => {
    const path = join(scratch, file.name);
    writeFileSync(path, file.content);
    return path;
  };
  const list = [];
  if (existsSync(native)) {
    list.push({
      name: 'native',
      run: (args, stdin, file) => runProcess(native, file ? [...args, hostFile(file)] : args, stdin),
    });
  }
  if (wasmtime) {
    list.push({
      name: 'wasmtime run',
      run: (args, stdin, file) => {
        if (!file) return runProcess(wasmtime, ['run', command, ...args], stdin);
        hostFile(file);
        const guest = `${GUEST_DIR}/${file.name}`;
        return runProcess(wasmtime, ['run', '--dir', `${scratch}::${GUEST_DIR}`, command, ...args, guest], stdin);
      },
    });
  }
  list.push({
    name: 'node:wasi',
    run: async (args, stdin, file) => {
      // node:wasi takes file descriptors: stdin from a file, output to files.
      const io = mkdtempSync(join(scratch, 'node-wasi-'));
      const paths = ['stdin', 'stdout', 'stderr'].map((n) => join(io, n));
      writeFileSync(paths[0], stdin);
      const fds = [openSync(paths[0], 'r'), openSync(paths[1], 'w'), openSync(paths[2], 'w')];
      try {
        const preopens = {};
        if (file) {
          hostFile(file);
          preopens[GUEST_DIR] = scratch;
          args = [...args, `${GUEST_DIR}/${file.name}`];
        }
        const wasi = new WASI({
          version: 'preview1',
          args: ['vecproc', ...args],
          env: {},
          preopens,
          stdin: fds[0],
          stdout: fds[1],
          stderr: fds[2],
          returnOnExit: true,
        });
        const module = await WebAssembly.compile(readFileSync(command));
        const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
        const code = wasi.start(instance);
        return { code, stdout: readFileSync(paths[1]), stderr: readFileSync(paths[2]) };
      } finally {
        fds.forEach((fd) => closeSync(fd));
        rmSync(io, { recursive: true, force: true });
      }
    },
  });
  list.push({
    name: '@wasmer/sdk',
    wasmer: undefined,
    async run(args, stdin, file) {
      if (!this.wasmer) {
        const { Wasmer } = await import('@wasmer/sdk/node');
        this.wasmer = new Wasmer();
        this.pkg = await this.wasmer.packages.load(readFileSync(command));
      }
      const files = {};
      if (file) {
        files[`${GUEST_DIR}/${file.name}`] = file.content;
        args = [...args, `${GUEST_DIR}/${file.name}`];
      }
      const sandbox = await this.wasmer.sandboxes.create({ packages: [this.pkg], files });
      try {
        const out = await sandbox.command(this.pkg, args).run({ stdin, check: false, outputBytes: OUTPUT_LIMIT });
        assert.ok(!out.stdout.truncated && !out.stderr.truncated, '@wasmer/sdk truncated the output');
        return { code: out.exitCode, stdout: Buffer.from(out.stdout.bytes), stderr: Buffer.from(out.stderr.bytes) };
      } finally {
        await sandbox.close();
      }
    },
    async close() {
      await this.wasmer?.close?.();
    },
  });
  if (wasmerCli) {
    list.push({
      name: 'wasmer run',
      run: (args, stdin, file) => {
        if (!file) return runProcess(wasmerCli, ['run', command, '--', ...args], stdin);
        hostFile(file);
        const guest = `${GUEST_DIR}/${file.name}`;
        return runProcess(wasmerCli, ['run', '--volume', `${scratch}:${GUEST_DIR}`, command, '--', ...args, guest], stdin);
      },
    });
  }
  return list;
}

const f64le = (values) => new Uint8Array(Float64Array.from(values).buffer);
const text = (s) => new TextEncoder().encode(s);
const million = randomValues(1_000_000, 0x5eed_1234n);
const millionJson = text(JSON.stringify(Array.from(million)));

const STATS_4132 =
  '{"count":4,"sum":10.0,"mean":2.5,"min":1.0,"max":4.0,"variance":1.25,"stddev":1.118033988749895,' +
  '"sample_variance":1.6666666666666667,"sample_stddev":1.2909944487358056,"median":2.5,"p25":1.75,' +
  '"p75":3.25,"p90":3.7,"p99":3.9699999999999998}\n';

// [name, args, stdin, expectation]: `code`, and `stdout` or a `stderr` pattern.
const cases = [
  ['JSON array', [], text('[4, 1, 3, 2]'), { code: 0, stdout: STATS_4132 }],
  ['{"values": [...]}', [], text('{"values": [4, 1, 3, 2]}'), { code: 0, stdout: STATS_4132 }],
  ['one number per line', ['--format', 'lines'], text('4\n1\n\n3\n2\n'), { code: 0, stdout: STATS_4132 }],
  ['little-endian f64', ['--format', 'f64le'], f64le([4, 1, 3, 2]), { code: 0, stdout: STATS_4132 }],
  ['empty input', [], text('[]'), { code: 0, stdout: /^\{"count":0,"sum":0\.0,"mean":null,.*"p99":null\}\n$/ }],
  ['compensated sum', [], text('[1e16, 1.0, -1e16]'), { code: 0, stdout: /^\{"count":3,"sum":1\.0,/ }],
  ['a sum beyond the f64 range is null', [], text('[1.7976931348623157e308, 1.7976931348623157e308]'), { code: 0, stdout: /"sum":null,"mean":1\.7976931348623157e\+308,/ }],
  ['--sort', ['--sort'], text('[3, 1.5, -2, 8]'), { code: 0, stdout: '[-2.0,1.5,3.0,8.0]\n' }],
  ['--sort desc', ['--sort', 'desc'], text('[3, 1.5, -2, 8]'), { code: 0, stdout: '[8.0,3.0,1.5,-2.0]\n' }],
  ['--sort=asc of f64le', ['--sort=asc', '--format', 'f64le'], f64le([2.5, 0.5, 1]), { code: 0, stdout: '[0.5,1.0,2.5]\n' }],
  ['1,000,000 values: statistics', [], millionJson, { code: 0, stdout: /^\{"count":1000000,/ }],
  ['1,000,000 values: --sort desc', ['--sort', 'desc'], millionJson, { code: 0, stdout: /^\[0\.99999/ }],
  ['1,000,000 values as f64le: --sort', ['--sort', '--format', 'f64le'], new Uint8Array(million.buffer), { code: 0, stdout: /^\[[0-9.e-]+,[0-9.e-]+,/ }],
  ['not a number', [], text('[1, "two"]'), { code: 1, stderr: /^vecproc: error: stdin: invalid type: string "two", expected a number at line 1 column 9 \(not_a_number\)\n$/ }],
  ['bad JSON', [], text('[1,'), { code: 1, stderr: /\(bad_json\)\n$/ }],
  ['no input at all', [], text(''), { code: 1, stderr: /\(bad_json\)\n$/ }],
  ['beyond the f64 range', [], text('[1e400]'), { code: 1, stderr: /\(non_finite\)\n$/ }],
  ['NaN in f64le', ['--format', 'f64le'], f64le([1, NaN]), { code: 1, stderr: /value at index 1 is NaN, not a finite number \(non_finite\)/ }],
  ['f64le of a bad length', ['--format', 'f64le'], text('abc'), { code: 1, stderr: /binary body is 3 bytes, not a multiple of 8/ }],
  ['a line that is not a number', ['--format', 'lines'], text('1\n2\nthree\n'), { code: 1, stderr: /^vecproc: error: stdin: line 3: "three" is not a number \(not_a_number\)\n$/ }],
  ['--sort sideways', ['--sort', 'sideways'], text('[1]'), { code: 2, stderr: /^error: invalid value 'sideways' for '--sort \[<ORDER>\]'/ }],
  ['an unknown flag', ['--bogus'], text('[1]'), { code: 2, stderr: /^error: unexpected argument '--bogus' found\n[\s\S]*Usage: vecproc \[OPTIONS\] \[FILE\]/ }],
  ['--help', ['--help'], text(''), { code: 0, stdout: /Usage: vecproc \[OPTIONS\] \[FILE\]/ }],
  ['--version', ['--version'], text(''), { code: 0, stdout: /^vecproc \d+\.\d+\.\d+\n$/ }],
];

describe('the WASI command gives the same bytes on every runtime', { skip: prerequisite(!existsSync(command) && `${command} is not built`) }, () => {
  let scratch;
  let list;
  const results = new Map(); // case name -> [{ runner, result }]

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'vecproc-wasi-'));
    list = runners(scratch);
  });

  after(async () => {
    for (const runner of list ?? []) await runner.close?.();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('runtimes found', () => {
    const names = list.map((r) => r.name);
    for (const name of ['node:wasi', '@wasmer/sdk']) assert.ok(names.includes(name));
    if (wasmtime) assert.ok(names.includes('wasmtime run'));
    // Under `cargo xtask test` every runtime must be there, `wasmer run` when
    // it was asked for (`--wasmer-cli`): none may drop out unseen.
    if (process.env.VECPROC_REQUIRE_ALL === '1') {
      const required = ['native', 'wasmtime run', ...(wasmerCli ? ['wasmer run'] : [])];
      for (const name of required) assert.ok(names.includes(name), `${name} is missing`);
    }
    console.log(`# runtimes: ${names.join(', ')}${wasmerCli ? '' : ' (native wasmer CLI: not asked for; cargo xtask test --wasmer-cli adds it)'}`);
  });

  const check = (name, outcomes, want) => {
    const [first, ...rest] = outcomes;
    for (const { runner, result } of outcomes) {
      const what = `${name} under ${runner}`;
      assert.equal(result.code, want.code, `${what}: exit code (stderr ${result.stderr})`);
      if (typeof want.stdout === 'string') assert.equal(result.stdout.toString(), want.stdout, `${what}: stdout`);
      else if (want.stdout) assert.match(result.stdout.toString('latin1').slice(0, 4096), want.stdout, `${what}: stdout`);
      if (want.stderr) assert.match(result.stderr.toString(), want.stderr, `${what}: stderr`);
      if (want.code === 0 && !want.stdout?.source?.includes('Usage')) assert.equal(result.stderr.length, 0, `${what}: stderr not empty`);
      if (want.code !== 0) assert.equal(result.stdout.length, 0, `${what}: stdout not empty`);
    }
    for (const { runner, result } of rest) {
      assert.ok(result.stdout.equals(first.result.stdout), `${name}: stdout under ${runner} differs from ${first.runner}`);
      assert.ok(result.stderr.equals(first.result.stderr), `${name}: stderr under ${runner} differs from ${first.runner}`);
    }
  };

  for (const [name, args, stdin, want] of cases) {
    test(name, async () => {
      const outcomes = [];
      for (const runner of list) outcomes.push({ runner: runner.name, result: await runner.run(args, stdin) });
      check(name, outcomes, want);
      results.set(name, outcomes);
    });
  }

  test('a file argument', async () => {
    const file = { name: 'values.txt', content: '2\n1\n' };
    const outcomes = [];
    for (const runner of list) outcomes.push({ runner: runner.name, result: await runner.run(['--format', 'lines', '--sort', 'desc'], text('ignored'), file) });
    check('a file argument', outcomes, { code: 0, stdout: '[2.0,1.0]\n' });
  });

  test('the fixtures statistics', async () => {
    const { values, statistics } = fixtures.basic;
    const [runner] = list;
    const { stdout } = await runner.run([], text(JSON.stringify(values)));
    const got = JSON.parse(stdout.toString());
    assert.equal(got.count, statistics.count);
    assert.equal(got.sum, statistics.sum);
    assert.equal(got.sample_variance, statistics.sampleVariance);
  });

  // The statistics are the API's body, byte for byte (the command adds a newline).
  test('same bytes as POST /stats and POST /sort under wasmtime serve', { skip: prerequisite(!wasmtime && 'wasmtime not found', !existsSync(service) && `${service} is not built`) }, async () => {
    const server = await startWasmtimeServe(wasmtime, service);
    try {
      const pairs = [
        ['JSON array', '/stats', text('[4, 1, 3, 2]')],
        ['1,000,000 values: statistics', '/stats', millionJson],
        ['1,000,000 values: --sort desc', '/sort?order=desc', millionJson],
        ['a sum beyond the f64 range is null', '/stats', text('[1.7976931348623157e308, 1.7976931348623157e308]')],
      ];
      for (const [name, path, body] of pairs) {
        const res = await fetch(server.base + path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 200, name);
        const api = Buffer.from(await res.arrayBuffer());
        const outcomes = results.get(name);
        assert.ok(outcomes, `${name} ran`);
        for (const { runner, result } of outcomes) {
          assert.ok(result.stdout.equals(Buffer.concat([api, Buffer.from('\n')])), `${name} under ${runner} differs from the API's ${path} body`);
        }
      }
    } finally {
      await server.stop();
    }
  });
});
