#!/usr/bin/env node
// What crossing the JavaScript/WebAssembly boundary costs, for the article's
// operations on N values (boundary-cases.mjs): the wasm-bindgen module, the
// jco component and plain JavaScript, in Node and, with --chromium, in
// Debian's Chromium (the same cases on bench/boundary.html, served by
// scripts/serve-demo.mjs and driven by playwright-core). Needs
// `npm run transpile` and `cargo xtask build` (target/web/) first.
//
// Writes one JSON record per runtime (`--out DIR`, default <target>/bench):
// boundary-node.json and boundary-chromium.json, which `vecproc-bench report`
// turns into the boundary table of target/bench/report.md.
//
// Usage: node bench/boundary.mjs [--n 1000000] [--runs 5] [--out DIR] [--chromium PATH]

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

import { vectorProcessor as jco } from '../gen/vector-processor/vector-processor.js';
import { jsRoot, targetDir } from '../scripts/paths.mjs';
import { implementations, randomValues, runAll } from './boundary-cases.mjs';

function parseArgs(argv) {
  const opts = { n: 1_000_000, runs: 5, out: join(targetDir, 'bench'), chromium: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--n') opts.n = Number(argv[++i]);
    else if (arg === '--runs') opts.runs = Number(argv[++i]);
    else if (arg === '--out') opts.out = resolve(argv[++i]);
    else if (arg === '--chromium') opts.chromium = argv[++i];
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: boundary.mjs [--n N] [--runs R] [--out DIR] [--chromium PATH]`);
  }
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new Error('--n must be a positive integer');
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error('--runs must be a positive integer');
  return opts;
}

const versionOf = (pkg) => JSON.parse(readFileSync(join(jsRoot, 'node_modules', pkg, 'package.json'), 'utf8')).version;

function write(out, runtime, n, runs, results) {
  mkdirSync(out, { recursive: true });
  const file = join(out, `boundary-${runtime.split(' ')[0].toLowerCase()}.json`);
  const record = { runtime, jco: versionOf('@bytecodealliance/jco'), n, runs, date: new Date().toISOString(), results };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file}\n`);
}

async function chromiumRun(executablePath, n, runs) {
  const { chromium } = await import('playwright-core');
  const { startDemoServer } = await import('../scripts/serve-demo.mjs');
  const server = await startDemoServer({ port: 0 });
  const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(new URL(`/bench/boundary.html?n=${n}&runs=${runs}`, server.url).href);
    await page.waitForFunction(() => window.boundary !== undefined || window.boundaryError !== undefined, null, { timeout: 600_000 });
    const error = await page.evaluate(() => window.boundaryError);
    if (error || errors.length) throw new Error(`Chromium: ${error ?? errors.join('; ')}`);
    return { version: browser.version(), results: await page.evaluate(() => window.boundary) };
  } finally {
    await browser.close();
    await server.close();
  }
}

async function main() {
  const { n, runs, out, chromium } = parseArgs(process.argv.slice(2));
  const nodeBuild = join(targetDir, 'web', 'node', 'vecproc_web.js');
  if (!existsSync(nodeBuild)) throw new Error(`${nodeBuild} is missing: run cargo xtask build`);
  const bindgen = createRequire(import.meta.url)(nodeBuild);
  const data = randomValues(n);

  console.log(`Node ${process.version}: n = ${n.toLocaleString('en-US')}, ${runs} runs after a warm-up`);
  const results = runAll(data, implementations({ jco, bindgen }), runs, (line) => console.log(`  ${line}`));
  write(out, `Node ${process.version}`, n, runs, results);

  if (chromium) {
    console.log(`Chromium (${chromium}): the same cases on bench/boundary.html`);
    const run = await chromiumRun(chromium, n, runs);
    for (const r of run.results) console.log(`  ${r.op.padEnd(15)} ${r.impl.padEnd(13)} median ${r.medianMs.toFixed(3).padStart(9)} ms`);
    write(out, `Chromium ${run.version}`, n, runs, run.results);
  }
}

main().catch((err) => {
  console.error(`boundary: ${err.message}`);
  process.exit(1);
});
