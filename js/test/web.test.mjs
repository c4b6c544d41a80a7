// The wasm-bindgen package (target/web/, `cargo xtask build`): its Node build
// (`wasm-bindgen --target nodejs`) against the article's API and the WIT
// interface's semantics, the zero-copy sorted view and the rules that keep it
// safe, and every statistic and sorted value against the native library (the
// `vecproc` CLI built from the same vecproc-core) on random and adversarial
// inputs, bit for bit.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { assertStatistics, fixtures, prerequisite, randomValues, repoRoot, targetDir } from './helpers.mjs';

const webDir = join(targetDir, 'web');
const nodeBuild = join(webDir, 'node', 'vecproc_web.js');
const native = process.env.VECPROC_CLI ?? join(targetDir, 'debug', 'vecproc');
const skip = prerequisite(
  !existsSync(nodeBuild) && `${nodeBuild} is not built (cargo xtask build)`,
  !existsSync(native) && `${native} is not built (cargo build -p vecproc-cli)`,
);
const web = skip ? {} : createRequire(import.meta.url)(nodeBuild);
const { VectorProcessor, memory_bytes: memoryBytes, compute } = web;

/** The error `fn` throws; fails if it returns. */
function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected an exception');
}

/**
 * The native CLI's answer for `values`: statistics, or with `args` the sorted
 * array. The values go in as little-endian f64 (`--format f64le`), so every
 * bit arrives (JSON would turn -0 into 0).
 */
function nativeAnswer(values, args = []) {
  const input = Buffer.from(new Float64Array(values).buffer);
  const run = spawnSync(native, ['--format', 'f64le', ...args], { input, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** Exact equality that tells -0 from +0. */
function assertSameNumbers(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Object.is(actual[i], expected[i]), `${what}[${i}]: ${actual[i]} !== ${expected[i]}`);
  }
}

describe('wasm-bindgen package: the article API', { skip }, () => {
  test('constructor, add_value, add_values, len, sum, mean', () => {
    const v = new VectorProcessor();
    assert.equal(v.len(), 0);
    assert.equal(v.is_empty(), true);
    assert.equal(v.sum(), 0);
    assert.equal(v.mean(), undefined, 'the mean of nothing is undefined, not the article 0');
    v.add_value(fixtures.basic.values[0]);
    v.add_values(new Float64Array(fixtures.basic.values.slice(1)));
    assert.equal(v.len(), fixtures.basic.values.length);
    assert.equal(v.sum(), fixtures.basic.statistics.sum);
    assert.equal(v.mean(), fixtures.basic.statistics.mean);
    v.free();
  });

  test('sums are compensated', () => {
    const v = new VectorProcessor();
    v.add_values(new Float64Array(fixtures.compensated.values));
    assert.equal(v.sum(), fixtures.compensated.sum);
  });

  test('non-finite input is a JS Error and adds nothing', () => {
    const v = new VectorProcessor();
    v.add_value(1);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const err = thrown(() => v.add_value(bad));
      assert.ok(err instanceof Error, `${err} is an Error`);
      assert.match(err.message, /value at index 0 is not a finite number/);
    }
    const err = thrown(() => v.add_values(new Float64Array([2, 3, NaN, 4])));
    assert.match(err.message, /value at index 2 is not a finite number/);
    assert.equal(v.len(), 1, 'a refused batch adds none of its values');
    assert.equal(v.sum(), 1);
  });

  test('sort, sorted copy, statistics', () => {
    const v = new VectorProcessor();
    v.add_values(new Float64Array(fixtures.basic.values));
    assert.deepEqual(Array.from(v.sorted('desc')), fixtures.basic.descending);
    const asc = v.sorted();
    assert.ok(asc instanceof Float64Array);
    assert.deepEqual(Array.from(asc), fixtures.basic.ascending);
    assert.match(thrown(() => v.sort('sideways')).message, /"sideways" is not "asc" or "desc"/);
    const keyOf = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    assertStatistics(v.statistics(), fixtures.basic.statistics, { keyOf });
    assertStatistics(new VectorProcessor().statistics(), fixtures.empty.statistics, { keyOf });
  });

  test('compute is the seed kernel', () => {
    assert.equal(compute(0), 0);
    const { n, result: expected } = fixtures.compute.at(-1);
    const rel = fixtures.computeRelativeTolerance;
    assert.ok(Math.abs(compute(n) - expected) <= rel * Math.max(1, Math.abs(expected)));
  });
});

describe('wasm-bindgen package: the zero-copy sorted view', { skip }, () => {
  test('is handed out only for values sorted now', () => {
    const v = new VectorProcessor();
    v.add_values(new Float64Array([3, 1, 2]));
    assert.match(thrown(() => v.sorted_view()).message, /call sort\(\) before sorted_view\(\)/);
    v.sort();
    const view = v.sorted_view();
    assert.ok(view instanceof Float64Array);
    assert.deepEqual(Array.from(view), [1, 2, 3]);
    v.add_value(0);
    assert.match(thrown(() => v.sorted_view()).message, /changed since the last sort/);
    v.sort('desc');
    assert.deepEqual(Array.from(v.sorted_view()), [3, 2, 1, 0]);
    v.clear();
    assert.throws(() => v.sorted_view(), /not sorted/);
  });

  test('is a view over the module memory, not a copy', () => {
    const v = new VectorProcessor();
    v.add_values(new Float64Array([5, 4, 3]));
    v.sort();
    const a = v.sorted_view();
    const b = v.sorted_view();
    assert.equal(a.buffer, b.buffer, 'both views share one ArrayBuffer (the memory)');
    assert.equal(a.byteOffset, b.byteOffset);
    assert.equal(a.buffer.byteLength, memoryBytes(), 'the buffer is the whole linear memory');
    // Writing through one view shows in the processor's own storage.
    a[0] = 3.5;
    assert.deepEqual(Array.from(v.sorted()), [3.5, 4, 5]);
  });

  test('a kept view is detectably stale: generation moves, growth detaches', () => {
    const v = new VectorProcessor();
    v.add_values(new Float64Array([2, 1]));
    v.sort();
    const view = v.sorted_view();
    const generation = v.generation();
    assert.equal(v.generation(), generation, 'reads do not move it');
    v.sort();
    assert.equal(v.generation(), generation, 'a repeated sort changes nothing');
    v.add_value(0);
    assert.notEqual(v.generation(), generation, 'a change moves it');
    // Grow the memory well past its size: the old buffer is detached and
    // every view over it reads as empty instead of as wrong numbers.
    const before = memoryBytes();
    const big = new VectorProcessor();
    big.add_values(new Float64Array(before / 8 + (1 << 20)));
    assert.ok(memoryBytes() > before, 'memory grew');
    assert.equal(view.length, 0, 'the stale view is detached');
    big.free();
  });
});

describe('wasm-bindgen package vs the native library', { skip }, () => {
  const cases = {
    empty: [],
    single: [42.5],
    signedZeros: [0, -0, 0, -0, 1, -1],
    duplicates: Array.from({ length: 1000 }, (_, i) => i % 7),
    ascending: Array.from({ length: 1000 }, (_, i) => i * 0.25 - 100),
    descending: Array.from({ length: 1000 }, (_, i) => 100 - i * 0.25),
    huge: [Number.MAX_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 1e308, -1e300],
    tiny: [Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, 5e-324, 0],
    cancelling: [1e16, 1, -1e16, 3.14, -3.14, 1e-16],
    random: Array.from(randomValues(10_000, 7n), (x) => x * 2e6 - 1e6),
    randomWide: Array.from(randomValues(10_000, 11n), (x, i) => (x - 0.5) * 10 ** ((i % 61) - 30)),
  };
  for (const [name, values] of Object.entries(cases)) {
    test(`${name}: statistics and both sort orders, bit for bit`, () => {
      const v = new VectorProcessor();
      v.add_values(new Float64Array(values));
      const want = nativeAnswer(values);
      const got = v.statistics();
      for (const [key, expected] of Object.entries(want)) {
        const actual = got[key];
        // null is JSON's "none", and also what the CLI writes for ±Infinity
        // (an overflowing sum or variance), which JSON cannot express.
        if (expected === null) assert.ok(actual === undefined || !Number.isFinite(actual), `${name}.${key}: ${actual}`);
        else assert.ok(Object.is(actual, expected), `${name}.${key}: ${actual} !== ${expected}`);
      }
      assertSameNumbers(v.sorted('asc'), nativeAnswer(values, ['--sort', 'asc']), `${name} asc`);
      assertSameNumbers(v.sorted('desc'), nativeAnswer(values, ['--sort', 'desc']), `${name} desc`);
      v.sort();
      assertSameNumbers(v.sorted_view(), nativeAnswer(values, ['--sort', 'asc']), `${name} view`);
    });
  }
});

describe('wasm-bindgen package: the npm manifest', { skip }, () => {
  test('names every file it exports, at the crate version', () => {
    const pkg = JSON.parse(readFileSync(join(webDir, 'package.json'), 'utf8'));
    const crate = readFileSync(join(repoRoot, 'Cargo.toml'), 'utf8').match(/^version = "(.+)"$/m)[1];
    assert.equal(pkg.version, crate);
    assert.equal(pkg.private, undefined, 'publishable');
    for (const target of Object.values(pkg.exports['.'])) {
      for (const file of Object.values(target)) assert.ok(existsSync(join(webDir, file)), file);
    }
  });
});
