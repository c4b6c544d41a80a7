#!/usr/bin/env node
// Transpiles the components into ES modules for Node and browsers, with
// TypeScript declarations:
//
//   target/wasm/vector-processor.wasm     ->  js/gen/vector-processor/
//   target/wasm/vector-kernels.wasm       ->  js/gen/vector-kernels/
//   target/wasm/vector-kernels-size.wasm  ->  js/gen/vector-kernels-size/
//
// The processor is what the API module, the demo and the tests use; the
// kernels component is the benchmark's (`bench/kernels.mjs`,
// `test/kernels.test.mjs`), built as the processor ships (opt-level 3 with
// `+simd128`) and at opt-level "s". The kernels are transpiled when built
// (`cargo xtask build` builds them). Each output names its entry module
// after its component (`vector-processor.js`, `vector-kernels.js`).
//
// `cargo xtask build` writes the components; `js/gen/` is ignored by git.
// The output is the default jco output (not `--no-nodejs-compat`), which runs
// in Node and in the browser alike. Skipped when the output is newer than
// the component and than the installed jco; `--force` transpiles anyway.
//
// Usage: node scripts/transpile.mjs [--force] [--wasm PATH --out DIR [--name NAME]]
// (with --wasm/--out only that one component is transpiled)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { jsRoot, wasmPath } from './paths.mjs';

export { jsRoot, repoRoot } from './paths.mjs';
export const defaultWasm = wasmPath('vector-processor.wasm');
export const defaultOut = join(jsRoot, 'gen', 'vector-processor');
export const kernelsWasm = wasmPath('vector-kernels.wasm');
export const kernelsOut = join(jsRoot, 'gen', 'vector-kernels');
export const kernelsSizeWasm = wasmPath('vector-kernels-size.wasm');
export const kernelsSizeOut = join(jsRoot, 'gen', 'vector-kernels-size');

/** Path of the jco command-line entry point inside node_modules. */
export function jcoBin() {
  const pkgDir = join(jsRoot, 'node_modules', '@bytecodealliance', 'jco');
  const pkgFile = join(pkgDir, 'package.json');
  if (!existsSync(pkgFile)) {
    throw new Error(`jco is not installed in ${relative(process.cwd(), jsRoot) || '.'}: run \`npm ci\` there first`);
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.jco;
  return { path: join(pkgDir, bin), version: pkg.version, pkgFile };
}

/**
 * Transpiles `wasm` into `out` unless `out` is already up to date.
 * Returns `true` when it transpiled, `false` when it skipped.
 */
export function transpile({ wasm = defaultWasm, out = defaultOut, name = 'vector-processor', force = false, quiet = false } = {}) {
  if (!existsSync(wasm)) {
    throw new Error(`${wasm} does not exist: build it first with \`cargo xtask build\``);
  }
  const jco = jcoBin();
  const entry = join(out, `${name}.js`);
  if (!force && existsSync(entry)) {
    const built = statSync(entry).mtimeMs;
    if (built >= statSync(wasm).mtimeMs && built >= statSync(jco.pkgFile).mtimeMs) {
      if (!quiet) console.log(`transpile: ${relative(process.cwd(), out)} is up to date`);
      return false;
    }
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const started = performance.now();
  // `--name` fixes the file names whatever the input file is called.
  const args = [jco.path, 'transpile', wasm, '--out-dir', out, '--name', name, '--quiet'];
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`jco ${jco.version} transpile failed (exit ${result.status ?? result.signal})`);
  }
  if (!existsSync(entry)) throw new Error(`jco transpile did not write ${entry}`);
  if (!quiet) {
    const ms = (performance.now() - started).toFixed(0);
    console.log(`transpile: ${relative(process.cwd(), wasm)} -> ${relative(process.cwd(), out)}/ (jco ${jco.version}, ${ms} ms)`);
  }
  return true;
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--force') opts.force = true;
    else if (arg === '--wasm') opts.wasm = resolve(argv[++i] ?? '');
    else if (arg === '--out') opts.out = resolve(argv[++i] ?? '');
    else if (arg === '--name') opts.name = argv[++i] ?? '';
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: transpile.mjs [--force] [--wasm PATH] [--out DIR] [--name NAME]`);
  }
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const explicit = opts.wasm !== undefined || opts.out !== undefined;
    transpile(opts);
    if (!explicit) {
      // The benchmark's components: transpiled when they have been built.
      for (const [wasm, out] of [[kernelsWasm, kernelsOut], [kernelsSizeWasm, kernelsSizeOut]]) {
        if (existsSync(wasm)) transpile({ ...opts, wasm, out, name: 'vector-kernels' });
      }
    }
  } catch (err) {
    console.error(`transpile: ${err.message}`);
    process.exit(1);
  }
}
