#!/usr/bin/env node
// What crossing the component boundary costs in Node, through the bindings
// `jco transpile` generates (run `npm run transpile` first):
//
// - N single `add-value` calls against one bulk `add-values` of N values
//   (Float64Array, and a plain array for comparison);
// - sorting N values in the component against Float64Array.prototype.sort and
//   Array.prototype.sort with a comparator; also the component's mean.
//
// Each case runs a few times on fresh data copies; the table shows the minimum
// and median. The results are also written to target/js/boundary.json.
//
// Usage: node bench/boundary.mjs [--n 1000000] [--runs 5] [--out PATH]

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { vectorProcessor as wit } from '../gen/vector-processor/vector-processor.js';
import { jsRoot, targetDir } from '../scripts/paths.mjs';

function parseArgs(argv) {
  const opts = { n: 1_000_000, runs: 5, out: join(targetDir, 'js', 'boundary.json') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--n') opts.n = Number(argv[++i]);
    else if (arg === '--runs') opts.runs = Number(argv[++i]);
    else if (arg === '--out') opts.out = resolve(argv[++i]);
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: boundary.mjs [--n N] [--runs R] [--out PATH]`);
  }
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new Error('--n must be a positive integer');
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error('--runs must be a positive integer');
  return opts;
}

/** Random doubles from a small fast generator (mulberry32 pairs), reproducible. */
function randomValues(n, seed = 42) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() / 2 ** 32) * 2e6 - 1e6;
  return out;
}

/**
 * Times `body(state)` `runs` times after one warm-up; `setup()` prepares each
 * run's state untimed and `teardown(state)` cleans up after it.
 */
function measure(runs, { setup = () => undefined, body, teardown = () => {} }) {
  const samples = [];
  for (let i = 0; i <= runs; i++) {
    const state = setup();
    const start = performance.now();
    body(state);
    const ms = performance.now() - start;
    teardown(state);
    if (i > 0) samples.push(ms); // the first run is a warm-up
  }
  const sorted = samples.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { minMs: sorted[0], medianMs: median, runsMs: samples };
}

function filled(data) {
  const v = new wit.Vector();
  v.addValues(data);
  return v;
}

const dispose = (v) => v[Symbol.dispose]();

function main() {
  const { n, runs, out } = parseArgs(process.argv.slice(2));
  const data = randomValues(n);
  const plain = Array.from(data);
  const jcoVersion = JSON.parse(
    readFileSync(join(jsRoot, 'node_modules', '@bytecodealliance', 'jco', 'package.json'), 'utf8'),
  ).version;

  const cases = [
    {
      group: 'boundary',
      name: `add-value × ${n.toLocaleString('en-US')} (one call per value)`,
      setup: () => new wit.Vector(),
      body: (v) => {
        for (let i = 0; i < data.length; i++) v.addValue(data[i]);
      },
      teardown: dispose,
      perCall: n,
    },
    {
      group: 'boundary',
      name: `add-values, one Float64Array of ${n.toLocaleString('en-US')}`,
      setup: () => new wit.Vector(),
      body: (v) => v.addValues(data),
      teardown: dispose,
    },
    {
      group: 'boundary',
      name: `add-values, one plain Array of ${n.toLocaleString('en-US')}`,
      setup: () => new wit.Vector(),
      body: (v) => v.addValues(plain),
      teardown: dispose,
    },
    {
      group: 'sort',
      name: 'component sort (in place, in WebAssembly)',
      setup: () => filled(data),
      body: (v) => v.sort('ascending'),
      teardown: dispose,
    },
    {
      group: 'sort',
      name: 'component sorted (sort + copy out to a Float64Array)',
      setup: () => filled(data),
      body: (v) => v.sorted('ascending'),
      teardown: dispose,
    },
    {
      group: 'sort',
      name: 'Float64Array.prototype.sort()',
      setup: () => data.slice(),
      body: (copy) => copy.sort(),
    },
    {
      group: 'sort',
      name: 'Array.prototype.sort((a, b) => a - b)',
      setup: () => plain.slice(),
      body: (copy) => copy.sort((a, b) => a - b),
    },
    {
      group: 'mean',
      name: 'component mean (compensated)',
      setup: () => filled(data),
      body: (v) => v.mean(),
      teardown: dispose,
    },
    {
      group: 'mean',
      name: 'JavaScript mean (naive loop over the Float64Array)',
      body: () => {
        let sum = 0;
        for (let i = 0; i < data.length; i++) sum += data[i];
        return sum / data.length;
      },
    },
  ];

  console.log(`Node ${process.version}, jco ${jcoVersion}, n = ${n.toLocaleString('en-US')}, ${runs} runs after a warm-up\n`);
  const width = Math.max(...cases.map((c) => c.name.length));
  console.log(`${'case'.padEnd(width)}  ${'min ms'.padStart(9)}  ${'median ms'.padStart(9)}  per call`);
  console.log(`${'-'.repeat(width)}  ${'-'.repeat(9)}  ${'-'.repeat(9)}  --------`);
  const results = [];
  let group;
  for (const c of cases) {
    if (group !== undefined && c.group !== group) console.log('');
    group = c.group;
    const r = measure(runs, c);
    const perCallUs = c.perCall ? (r.medianMs * 1000) / c.perCall : undefined;
    results.push({ group: c.group, name: c.name, ...r, ...(perCallUs === undefined ? {} : { perCallUs }) });
    const per = perCallUs === undefined ? '' : `${perCallUs.toFixed(3)} µs`;
    console.log(`${c.name.padEnd(width)}  ${r.minMs.toFixed(2).padStart(9)}  ${r.medianMs.toFixed(2).padStart(9)}  ${per}`);
  }

  const byName = (prefix) => results.find((r) => r.name.startsWith(prefix));
  const single = byName('add-value ×');
  const bulk = byName('add-values, one Float64Array');
  const sort = byName('component sort');
  const typed = byName('Float64Array.prototype.sort');
  const generic = byName('Array.prototype.sort');
  const summary = {
    bulkSpeedup: single.medianMs / bulk.medianMs,
    componentSortVsFloat64ArraySort: typed.medianMs / sort.medianMs,
    componentSortVsArraySort: generic.medianMs / sort.medianMs,
  };
  console.log(
    `\nbulk add-values is ${summary.bulkSpeedup.toFixed(0)}× faster than ${n.toLocaleString('en-US')} add-value calls; ` +
      `the component sorts ${summary.componentSortVsFloat64ArraySort.toFixed(1)}× as fast as Float64Array.sort ` +
      `and ${summary.componentSortVsArraySort.toFixed(1)}× as fast as Array.sort with a comparator.`,
  );

  mkdirSync(dirname(out), { recursive: true });
  const report = {
    node: process.version,
    jco: jcoVersion,
    platform: `${process.platform}-${process.arch}`,
    n,
    runs,
    date: new Date().toISOString(),
    results,
    summary,
  };
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

try {
  main();
} catch (err) {
  console.error(`boundary: ${err.message}`);
  process.exit(1);
}
