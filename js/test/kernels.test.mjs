// The benchmark kernels' plain-JavaScript implementations and inputs
// (bench/kernels-plain.mjs, bench/inputs.mjs): known answers, SHA-256 against
// node:crypto, and the benchmark component's (js/gen/vector-kernels/) same
// checksums from the guest's `time-kernel` and from its exported functions.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import * as I from '../bench/inputs.mjs';
import * as P from '../bench/kernels-plain.mjs';
import { checkChecksums } from '../bench/kernels.mjs';
import { prerequisite } from './helpers.mjs';

const jsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('inputs', () => {
  it('xorshift32 follows its definition from the seed 0x9e3779b9', () => {
    const next = I.xorshift32();
    let x = 0x9e3779b9n;
    const mask = 0xffffffffn;
    for (let i = 0; i < 1000; i++) {
      x ^= (x << 13n) & mask;
      x ^= x >> 17n;
      x ^= (x << 5n) & mask;
      assert.equal(next(), Number(x));
    }
  });

  it('builds each kernel input from a fresh generator', () => {
    const next = I.xorshift32();
    const first = next();
    assert.equal(I.i32Values(1)[0], first | 0);
    assert.equal(I.f64Values(1)[0], (first / 4294967296) * 2e6 - 1e6);
    assert.equal(I.bytes(1)[0], first & 0xff);
    const { a, b } = I.matrices(2);
    const again = I.xorshift32();
    const units = Array.from({ length: 8 }, () => (again() / 4294967296) * 2 - 1);
    assert.deepEqual([...a, ...b], units);
    const img = I.image(1920);
    assert.equal(img.height, 1080);
    assert.equal(img.rgba.length, 1920 * 1080 * 4);
  });
});

describe('plain kernels', () => {
  it('sorts typed arrays and plain arrays alike', () => {
    const i32 = I.i32Values(5001);
    const typed = P.sortI32Typed(i32.slice());
    const array = P.sortArray(Array.from(i32));
    for (let i = 1; i < typed.length; i++) assert.ok(typed[i - 1] <= typed[i]);
    assert.deepEqual(Array.from(typed), array);
    assert.equal(P.sortChecksum(typed), typed[0] + typed[2500] + typed[5000]);
    const f64 = I.f64Values(5001);
    assert.deepEqual(Array.from(P.sortF64Typed(f64.slice())), P.sortArray(Array.from(f64)));
    assert.equal(P.sortChecksum([]), 0);
  });

  it('blurs with clamped edges and rounding', () => {
    assert.ok(P.blur(5, 3, new Uint8Array(60).fill(200)).every((b) => b === 200));
    const src = new Uint8Array(5 * 3 * 4);
    src[0] = 160; // red of the top-left pixel
    const out = P.blur(5, 3, src);
    assert.equal(out[0], (160 * 9 + 8) >> 4);
    assert.equal(out[4], (160 * 3 + 8) >> 4);
    assert.equal(out[20], (160 * 3 + 8) >> 4);
    assert.equal(out[24], (160 * 1 + 8) >> 4);
    assert.throws(() => P.blur(2, 2, new Uint8Array(15)), RangeError);
  });

  it('multiplies matrices', () => {
    const c = P.matmul(2, new Float64Array([1, 2, 3, 4]), new Float64Array([5, 6, 7, 8]));
    assert.deepEqual(Array.from(c), [19, 22, 43, 50]);
    assert.equal(P.plainSum(c), 134);
  });

  it('hashes like node:crypto at every padding boundary', () => {
    const hex = (d) => Buffer.from(d).toString('hex');
    assert.equal(hex(P.sha256(new TextEncoder().encode('abc'))),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 65_536 + 61, 1_000_003]) {
      const data = new Uint8Array(randomBytes(n));
      assert.equal(hex(P.sha256(data)), createHash('sha256').update(data).digest('hex'), `${n} bytes`);
      assert.equal(hex(P.sha256NodeCrypto(data)), hex(P.sha256(data)));
    }
    assert.equal(P.digestChecksum(new Uint8Array([1, 2, 3, 4, 5, 6, 7])), 0x010203040506);
  });

  it('computes statistics like the component', () => {
    const s = P.statistics(new Float64Array([4, 1, 3, 2]));
    assert.deepEqual({ ...s, p90: undefined, p99: undefined }, {
      count: 4, sum: 10, mean: 2.5, min: 1, max: 4, variance: 1.25, stddev: Math.sqrt(1.25),
      median: 2.5, p25: 1.75, p75: 3.25, p90: undefined, p99: undefined,
    });
    assert.ok(Math.abs(s.p90 - 3.7) < 1e-12 && Math.abs(s.p99 - 3.97) < 1e-12);
    assert.equal(P.statistics(new Float64Array([1e16, 1, -1e16])).sum, 1);
    assert.equal(P.statistics(new Float64Array(0)).mean, undefined);
  });

  it('computes the sin*cos sum', () => {
    let acc = 0;
    for (let i = 0; i < 100; i++) acc += Math.sin(i) * Math.cos(i);
    assert.equal(P.compute(100), acc);
  });

  it('reports checksum disagreements', () => {
    const rec = (runner, kernel, checksum) => ({ runner, kernel, size: 1, nanos: [1], checksum });
    assert.deepEqual(checkChecksums([rec('a', 'blur', 5), rec('b', 'blur', 5), rec('a', 'compute', 1), rec('b', 'compute', 1 + 1e-12)]), []);
    assert.equal(checkChecksums([rec('a', 'sha256', 5), rec('b', 'sha256', 6)]).length, 1);
    assert.equal(checkChecksums([rec('a', 'statistics', 1), rec('b', 'statistics', 1.001)]).length, 1);
  });
});

const entry = join(jsRoot, 'gen', 'vector-kernels', 'vector-kernels.js');
const mod = existsSync(entry) ? await import(pathToFileURL(entry).href) : undefined;
const skip = prerequisite(!mod?.kernels && 'js/gen/vector-kernels/ is missing (cargo xtask build, then npm run transpile)');

describe('the component agrees with plain JavaScript', { skip }, () => {
  const cases = [['sort-i32', 1001], ['sort-f64', 1001], ['blur', 37], ['matmul', 17], ['sha256', 1000], ['compute', 1000], ['statistics', 1001]];
  const plainChecksum = (kernel, size) => {
    const x = I.inputFor(kernel, size);
    switch (kernel) {
      case 'sort-i32': return P.sortChecksum(P.sortI32Typed(x));
      case 'sort-f64': return P.sortChecksum(P.sortF64Typed(x));
      case 'blur': return P.byteSum(P.blur(x.width, x.height, x.rgba));
      case 'matmul': return P.plainSum(P.matmul(x.n, x.a, x.b));
      case 'sha256': return P.digestChecksum(P.sha256(x));
      case 'compute': return P.compute(x);
      case 'statistics': return P.statistics(x).mean;
      default: throw new Error(kernel);
    }
  };

  for (const [kernel, size] of cases) {
    it(`time-kernel ${kernel} ${size}`, () => {
      const t = mod.kernels.timeKernel(kernel, size, 2);
      assert.equal(t.nanos.length, 2);
      const expected = plainChecksum(kernel, size);
      if (kernel === 'compute' || kernel === 'statistics') {
        assert.ok(Math.abs(t.checksum - expected) <= 1e-9 * Math.abs(expected), `${t.checksum} vs ${expected}`);
      } else {
        assert.equal(t.checksum, expected);
      }
    });
  }

  it('exported functions give the plain results', () => {
    const i32 = I.i32Values(999);
    assert.deepEqual(mod.kernels.sortI32(i32), i32.slice().sort());
    const f64 = I.f64Values(999);
    assert.deepEqual(mod.kernels.sortF64(f64), f64.slice().sort());
    const img = I.image(33);
    assert.deepEqual(mod.kernels.blur(img.width, img.height, img.rgba), P.blur(img.width, img.height, img.rgba));
    const m = I.matrices(9);
    assert.deepEqual(mod.kernels.matmul(m.n, m.a, m.b), P.matmul(m.n, m.a, m.b));
    const data = I.bytes(777);
    assert.deepEqual(mod.kernels.sha256(data), P.sha256(data));
    assert.ok(Math.abs(mod.kernels.computeLibm(1000) - P.compute(1000)) < 1e-12);
    assert.ok(Math.abs(mod.kernels.compute(1000) - P.compute(1000)) < 1e-12);
    const values = I.f64Values(1001);
    const mean = mod.kernels.statistics(values);
    assert.ok(Math.abs(mean - P.statistics(values).mean) <= 1e-9 * Math.abs(mean), `${mean}`);
    assert.equal(mod.kernels.statistics(new Float64Array(0)), 0);
    assert.throws(() => mod.kernels.statistics(new Float64Array([1, NaN])), /index 1/);
  });
});
