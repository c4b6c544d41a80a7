#!/usr/bin/env node
// The JavaScript side of the "native vs WASM vs JavaScript" kernel table:
// the benchmark component's `kernels` interface (target/wasm/vector-kernels.wasm,
// built as the shipped processor is) under Node, through the bindings
// `jco transpile` generates (run `npm run transpile` first), and the same
// kernels in plain JavaScript.
//
// Runners (the `runner` field of each record):
//   jco-guest        time-kernel: the guest times each run with its monotonic
//                    clock (input generation and copies excluded)
//   jco-host         process.hrtime around one call of the exported function,
//                    argument and result copies included
//   jco-size-guest,  the same for js/gen/vector-kernels-size/ (built from
//   jco-size-host    target/wasm/vector-kernels-size.wasm, opt-level "s");
//                    skipped when absent
//   js-typed         plain JavaScript on typed arrays (bench/kernels-plain.mjs)
//   js-array         Array.prototype.sort with a comparator (sort kernels)
//   js-node-crypto   sha256 through node:crypto: native OpenSSL, not JavaScript
//
// Inputs are built by bench/inputs.mjs, identical to the guest's and the
// native runner's, outside the timed region; sorts get a fresh copy per run.
// The plain-JS timings cover the kernel only (checksums are taken after the
// clock stops); the guest's `time-kernel` includes its checksum.
//
// Writes a JSON array of {runner, kernel, size, nanos, checksum[, note]}
// records, prints a table, and fails if the runners' checksums disagree
// (exactly for sort-*, blur, matmul, sha256; within 1e-9 relative for
// compute and statistics).
//
// Usage: node --expose-gc bench/kernels.mjs [--runs N] [--warmup N] [--out PATH]
//          [--quick] [--only kernel[,kernel]] [--runner name[,name]]

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { inputFor } from './inputs.mjs';
import * as plain from './kernels-plain.mjs';
import { jsRoot, targetDir, wasmPath } from '../scripts/paths.mjs';

export const KERNELS = ['sort-i32', 'sort-f64', 'blur', 'matmul', 'sha256', 'compute', 'compute-libm', 'statistics'];
const EXACT = new Set(['sort-i32', 'sort-f64', 'blur', 'matmul', 'sha256']);
const RELATIVE_TOLERANCE = 1e-9;

// Sizes of the table, and of the scaling series (sort-f64 and statistics,
// for the in-guest and typed-array runners only).
const FULL = {
  sizes: {
    'sort-i32': [1_000_000],
    'sort-f64': [1_000_000],
    blur: [1920],
    matmul: [256, 512],
    sha256: [16_777_216],
    compute: [1_000_000],
    'compute-libm': [1_000_000],
    statistics: [1_000_000],
  },
  scaling: { 'sort-f64': [10_000, 100_000, 10_000_000], statistics: [10_000, 100_000, 10_000_000] },
};
const QUICK = {
  sizes: {
    'sort-i32': [10_000],
    'sort-f64': [10_000],
    blur: [64],
    matmul: [32, 48],
    sha256: [65_536 + 61],
    compute: [10_000],
    'compute-libm': [10_000],
    statistics: [10_000],
  },
  scaling: { 'sort-f64': [1_000, 100_000], statistics: [1_000, 100_000] },
};

// The 10M-value scaling runs dominate the wall time (about 1.3 s per
// JavaScript run): they use at most the default warm-up and run counts even
// when more are asked for, and say so in the record's `note`.
const LARGE_SIZE = 10_000_000;
const LARGE_MAX_WARMUP = 2;
const LARGE_MAX_RUNS = 10;

function usage() {
  return 'usage: kernels.mjs [--runs N] [--warmup N] [--out PATH] [--quick] [--only kernel[,kernel]] [--runner name[,name]]';
}

function parseArgs(argv) {
  const opts = {
    runs: undefined,
    warmup: undefined,
    out: join(targetDir, 'bench', 'js.json'),
    quick: false,
    only: undefined,
    runners: undefined,
  };
  const count = (flag, value, min) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer >= ${min}, not ${JSON.stringify(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') opts.runs = count(arg, argv[++i], 1);
    else if (arg === '--warmup') opts.warmup = count(arg, argv[++i], 0);
    else if (arg === '--out') opts.out = resolve(argv[++i] ?? '');
    else if (arg === '--quick') opts.quick = true;
    else if (arg === '--only') opts.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (arg === '--runner') opts.runners = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}; ${usage()}`);
  }
  opts.runs ??= opts.quick ? 3 : 10;
  opts.warmup ??= opts.quick ? 1 : 2;
  for (const k of opts.only ?? []) {
    if (!KERNELS.includes(k)) throw new Error(`--only: unknown kernel ${JSON.stringify(k)} (kernels: ${KERNELS.join(', ')})`);
  }
  return opts;
}

const nowNs = () => process.hrtime.bigint();

/**
 * Runs `body(setup())` warmup + runs times, timing `body` only. Returns the
 * timed runs' nanoseconds and the checksum of the last run's output;
 * `after(output)` cleans up each run, untimed.
 */
function measure({ warmup, runs }, { setup, body, checksum, after = () => {} }) {
  const nanos = [];
  let sum = NaN;
  for (let i = 0; i < warmup + runs; i++) {
    const state = setup();
    const start = nowNs();
    const output = body(state);
    const elapsed = nowNs() - start;
    if (i >= warmup) nanos.push(Number(elapsed));
    if (i === warmup + runs - 1) sum = checksum(output);
    after(output);
  }
  return { nanos, checksum: sum };
}

// ------------------------------------------------------------ plain JavaScript

/** js-typed: idiomatic JavaScript on typed arrays. */
function typedCase(kernel, input) {
  const same = () => input;
  switch (kernel) {
    case 'sort-i32':
      return { setup: () => input.slice(), body: plain.sortI32Typed, checksum: plain.sortChecksum };
    case 'sort-f64':
      return { setup: () => input.slice(), body: plain.sortF64Typed, checksum: plain.sortChecksum };
    case 'blur':
      return { setup: same, body: (x) => plain.blur(x.width, x.height, x.rgba), checksum: plain.byteSum };
    case 'matmul':
      return { setup: same, body: (x) => plain.matmul(x.n, x.a, x.b), checksum: plain.plainSum };
    case 'sha256':
      return { setup: same, body: plain.sha256, checksum: plain.digestChecksum };
    case 'compute':
      return { setup: same, body: plain.compute, checksum: (r) => r };
    case 'statistics':
      return { setup: same, body: plain.statistics, checksum: (s) => s.mean };
    default:
      return undefined;
  }
}

/** js-array: a plain Array (copied from the input, untimed) sorted with a comparator. */
function arrayCase(kernel, input) {
  if (kernel !== 'sort-i32' && kernel !== 'sort-f64') return undefined;
  return { setup: () => Array.from(input), body: plain.sortArray, checksum: plain.sortChecksum };
}

/** js-node-crypto: node:crypto's SHA-256 (OpenSSL). */
function nodeCryptoCase(kernel, input) {
  if (kernel !== 'sha256') return undefined;
  return { setup: () => input, body: plain.sha256NodeCrypto, checksum: plain.digestChecksum };
}

// ------------------------------------------------------------ the component

/** jco-host: one call of the exported function, copies included. */
function hostCase(mod, kernel, input) {
  const k = mod.kernels;
  const same = () => input;
  switch (kernel) {
    case 'sort-i32':
      return { setup: same, body: (v) => k.sortI32(v), checksum: plain.sortChecksum };
    case 'sort-f64':
      return { setup: same, body: (v) => k.sortF64(v), checksum: plain.sortChecksum };
    case 'blur':
      return { setup: same, body: (x) => k.blur(x.width, x.height, x.rgba), checksum: plain.byteSum };
    case 'matmul':
      return { setup: same, body: (x) => k.matmul(x.n, x.a, x.b), checksum: plain.plainSum };
    case 'sha256':
      return { setup: same, body: (d) => k.sha256(d), checksum: plain.digestChecksum };
    case 'compute':
      return { setup: same, body: (n) => k.compute(n), checksum: (r) => r };
    case 'compute-libm':
      return { setup: same, body: (n) => k.computeLibm(n), checksum: (r) => r };
    case 'statistics':
      return { setup: same, body: (values) => k.statistics(values), checksum: (mean) => mean };
    default:
      return undefined;
  }
}

/** jco-guest: `time-kernel` once for the warm-up runs, once for the timed ones. */
function guestRun(mod, kernel, size, { warmup, runs }) {
  if (warmup > 0) mod.kernels.timeKernel(kernel, size, warmup);
  const timing = mod.kernels.timeKernel(kernel, size, runs);
  return { nanos: Array.from(timing.nanos, Number), checksum: timing.checksum };
}

/** Imports a transpiled component; undefined when it is optional and absent. */
async function loadComponent(dir, { wasm, optional }) {
  const entry = join(jsRoot, 'gen', dir, 'vector-kernels.js');
  if (optional && !existsSync(wasm)) return undefined;
  if (!existsSync(entry)) {
    throw new Error(`${relative(process.cwd(), entry)} is missing: run \`npm run transpile\` (after \`cargo xtask build\`)`);
  }
  const mod = await import(pathToFileURL(entry).href);
  if (!mod.kernels || typeof mod.kernels.timeKernel !== 'function') {
    throw new Error(`${relative(process.cwd(), entry)} has no \`kernels\` export: rebuild the component and run \`npm run transpile -- --force\``);
  }
  return mod;
}

// ------------------------------------------------------------ main

/** The runners, in table order. */
async function runners(wanted) {
  const want = (name) => !wanted || wanted.includes(name);
  const list = [];
  const components = [
    ['jco', 'vector-kernels', wasmPath('vector-kernels.wasm'), false],
    ['jco-size', 'vector-kernels-size', wasmPath('vector-kernels-size.wasm'), true],
  ];
  for (const [prefix, dir, wasm, optional] of components) {
    if (!want(`${prefix}-guest`) && !want(`${prefix}-host`)) continue;
    const mod = await loadComponent(dir, { wasm, optional });
    if (!mod) continue;
    if (want(`${prefix}-guest`)) {
      list.push({ name: `${prefix}-guest`, scaling: true, run: (kernel, size, input, counts) => guestRun(mod, kernel, size, counts) });
    }
    if (want(`${prefix}-host`)) {
      list.push({ name: `${prefix}-host`, scaling: false, makeCase: (kernel, input) => hostCase(mod, kernel, input) });
    }
  }
  if (want('js-typed')) list.push({ name: 'js-typed', scaling: true, makeCase: typedCase });
  if (want('js-array')) list.push({ name: 'js-array', scaling: false, makeCase: arrayCase });
  if (want('js-node-crypto')) list.push({ name: 'js-node-crypto', scaling: false, makeCase: nodeCryptoCase });
  const known = ['jco-guest', 'jco-host', 'jco-size-guest', 'jco-size-host', 'js-typed', 'js-array', 'js-node-crypto'];
  for (const name of wanted ?? []) {
    if (!known.includes(name)) throw new Error(`--runner: unknown runner ${JSON.stringify(name)} (runners: ${known.join(', ')})`);
  }
  return list;
}

/** Every (kernel, size, scaling-only) to run, in order. */
function plan(config, only) {
  const items = [];
  for (const kernel of KERNELS) {
    if (only && !only.includes(kernel)) continue;
    const main = config.sizes[kernel] ?? [];
    const extra = config.scaling[kernel] ?? [];
    const sizes = [...new Set([...main, ...extra])].sort((a, b) => a - b);
    for (const size of sizes) items.push({ kernel, size, scalingOnly: !main.includes(size) });
  }
  return items;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (ns) => (ns / 1e6).toFixed(ns < 1e7 ? 3 : ns < 1e9 ? 2 : 1);

/** Checksum disagreements, as messages. */
export function checkChecksums(records) {
  const groups = new Map();
  for (const r of records) {
    const key = `${r.kernel} ${r.size}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const problems = [];
  for (const [key, group] of groups) {
    const exact = EXACT.has(group[0].kernel);
    const ref = group[0];
    for (const r of group) {
      const ok = Number.isFinite(r.checksum)
        && (exact
          ? r.checksum === ref.checksum
          : Math.abs(r.checksum - ref.checksum) <= RELATIVE_TOLERANCE * Math.max(Math.abs(r.checksum), Math.abs(ref.checksum)));
      if (!ok) {
        const all = group.map((g) => `${g.runner}=${g.checksum}`).join(', ');
        problems.push(`${key}: checksums disagree (${exact ? 'exact' : `relative ${RELATIVE_TOLERANCE}`}): ${all}`);
        break;
      }
    }
  }
  return problems;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const config = opts.quick ? QUICK : FULL;
  const list = await runners(opts.runners);
  const items = plan(config, opts.only);
  const records = [];
  const started = performance.now();
  const header = `${'runner'.padEnd(15)} ${'kernel'.padEnd(13)} ${'size'.padStart(10)} ${'runs'.padStart(4)} ${'min ms'.padStart(10)} ${'median ms'.padStart(10)}`;
  console.log(`kernels: ${list.map((r) => r.name).join(', ')}; warm-up ${opts.warmup}, runs ${opts.runs}${opts.quick ? ' (quick)' : ''}`);
  console.log(header);
  console.log('-'.repeat(header.length));

  for (const { kernel, size, scalingOnly } of items) {
    const input = inputFor(kernel, size);
    let counts = { warmup: opts.warmup, runs: opts.runs };
    let note;
    if (size >= LARGE_SIZE && (opts.warmup > LARGE_MAX_WARMUP || opts.runs > LARGE_MAX_RUNS)) {
      counts = { warmup: Math.min(opts.warmup, LARGE_MAX_WARMUP), runs: Math.min(opts.runs, LARGE_MAX_RUNS) };
      note = `${size.toLocaleString('en-US')} values: warm-up ${counts.warmup}, runs ${counts.runs} (instead of ${opts.warmup}, ${opts.runs}) to bound the wall time`;
    }
    for (const runner of list) {
      if (scalingOnly && !runner.scaling) continue;
      let result;
      if (runner.run) {
        result = runner.run(kernel, size, input, counts);
      } else {
        const c = runner.makeCase(kernel, input);
        if (!c) continue;
        result = measure(counts, c);
      }
      globalThis.gc?.();
      const record = { runner: runner.name, kernel, size, nanos: result.nanos, checksum: result.checksum };
      if (note) record.note = note;
      records.push(record);
      const min = Math.min(...result.nanos);
      console.log(`${runner.name.padEnd(15)} ${kernel.padEnd(13)} ${String(size).padStart(10)} ${String(result.nanos.length).padStart(4)} ${ms(min).padStart(10)} ${ms(median(result.nanos)).padStart(10)}`);
    }
  }

  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`\n${records.length} records in ${seconds} s -> ${relative(process.cwd(), opts.out)}`);

  const problems = checkChecksums(records);
  if (problems.length) {
    console.error(`\nFAILED: the runners computed different results:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('checksums agree across runners (exact: sort-i32, sort-f64, blur, matmul, sha256; 1e-9 relative: compute, compute-libm, statistics)');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`kernels: ${err.message}`);
    process.exit(1);
  });
}
