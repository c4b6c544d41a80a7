// Every function of vecproc:vector/vector-processor through the jco-transpiled
// module, twice: the raw generated bindings (what jco gives any user) and the
// typed API in src/vector.js. Run `npm run transpile` first.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { vectorProcessor as raw } from '../gen/vector-processor/vector-processor.js';
import { compute, toFloat64Array, Vector, VectorError } from '../src/vector.js';
import { assertClose, assertStatistics, fixtures, randomValues } from './helpers.mjs';

const { basic } = fixtures;

/** Runs `fn`, expecting the ComponentError jco throws for an `error` result. */
function componentError(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error, `${err} is an Error`);
    assert.ok(err.payload, 'the error carries the WIT payload');
    return err.payload;
  }
  assert.fail('expected the component to refuse the call');
}

describe('generated bindings (jco transpile)', () => {
  test('constructor, len, add-value, add-values', () => {
    const v = new raw.Vector();
    assert.equal(v.len(), 0n);
    v.addValue(basic.values[0]);
    v.addValues(new Float64Array(basic.values.slice(1)));
    assert.equal(v.len(), BigInt(basic.values.length));
    assert.deepEqual(Array.from(v.read(0n, 100)), basic.values, 'insertion order until sorted');
    v[Symbol.dispose]();
  });

  test('sum, mean', () => {
    const v = new raw.Vector();
    assert.equal(v.sum(), 0);
    assert.equal(v.mean(), undefined, 'mean of nothing is none');
    v.addValues(new Float64Array(basic.values));
    assert.equal(v.sum(), basic.statistics.sum);
    assert.equal(v.mean(), basic.statistics.mean);
  });

  test('sum is compensated', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(fixtures.compensated.values));
    assert.equal(v.sum(), fixtures.compensated.sum);
  });

  test('sort, sorted, read', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(basic.values));
    v.sort('descending');
    assert.deepEqual(Array.from(v.read(0n, 10)), basic.descending);
    const asc = v.sorted('ascending');
    assert.ok(asc instanceof Float64Array);
    assert.deepEqual(Array.from(asc), basic.ascending);
    assert.deepEqual(Array.from(v.read(0n, 10)), basic.ascending, 'sorted also sorts in place');
    assert.deepEqual(Array.from(v.sorted('descending')), basic.descending);
    assert.deepEqual(Array.from(v.read(1n, 2)), basic.descending.slice(1, 3));
    assert.equal(v.read(4n, 10).length, 0, 'empty at the end');
    assert.equal(v.read(1000n, 10).length, 0, 'empty past the end');
    assert.throws(() => v.sort('sideways'), /sort-order/);
  });

  test('statistics and quantile', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(basic.values));
    const s = v.statistics();
    assert.equal(s.count, 4n);
    assertStatistics({ ...s, count: Number(s.count) }, basic.statistics);
    for (const [q, want] of basic.quantiles) assertClose(v.quantile(q), want, fixtures.quantileTolerance, `q${q}`);
  });

  test('clear', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(basic.values));
    v.clear();
    assert.equal(v.len(), 0n);
    const s = v.statistics();
    assertStatistics({ ...s, count: Number(s.count) }, fixtures.empty.statistics);
    assert.equal(v.quantile(0.5), undefined);
  });

  test('non-finite input is an error result and nothing is stored', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(basic.values));
    for (const { values, index } of fixtures.nonFinite) {
      assert.deepEqual(componentError(() => v.addValues(new Float64Array(values))), {
        tag: 'non-finite',
        val: BigInt(index),
      });
      assert.equal(v.len(), 4n, 'nothing from the refused call was stored');
    }
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.deepEqual(componentError(() => v.addValue(bad)), { tag: 'non-finite', val: 0n });
    }
    assert.deepEqual(Array.from(v.read(0n, 10)), basic.values);
  });

  test('invalid quantiles are error results', () => {
    const v = new raw.Vector();
    v.addValues(new Float64Array(basic.values));
    for (const q of fixtures.invalidQuantiles) {
      const payload = componentError(() => v.quantile(q));
      assert.equal(payload.tag, 'invalid-quantile');
      assert.ok(Object.is(payload.val, q), `payload ${payload.val} is ${q}`);
    }
  });

  test('compute', () => {
    for (const { n, result } of fixtures.compute) {
      assertClose(raw.compute(n), result, fixtures.computeRelativeTolerance, `compute(${n})`);
      // An independent recomputation with the JS engine's sin and cos, which
      // may differ from the guest's libm in the last bits.
      let js = 0;
      for (let i = 0; i < n; i++) js += Math.sin(i) * Math.cos(i);
      assertClose(raw.compute(n), js, 1e-9, `compute(${n}) vs JS`);
    }
  });
});

describe('typed API (src/vector.js)', () => {
  test('every method', () => {
    const v = new Vector(basic.values);
    assert.equal(v.len(), 4);
    assert.equal(v.length, 4);
    assert.equal(v.sum(), 10);
    assert.equal(v.mean(), 2.5);
    assert.equal(v.addValue(5), v, 'chainable');
    assert.equal(v.len(), 5);
    assert.deepEqual(Array.from(v.sorted('desc')), [5, ...basic.descending]);
    assert.deepEqual(Array.from(v.read(1, 2)), [4, 3]);
    assert.deepEqual(Array.from(v.read(1n, 2)), [4, 3], 'bigint offsets too');
    assert.deepEqual(Array.from(v.sort().toFloat64Array()), [...basic.ascending, 5]);
    assert.deepEqual(Array.from(v.sorted()), [...basic.ascending, 5]);
    v.clear().addValues(new Float64Array(basic.values));
    const s = v.statistics();
    assert.deepEqual(Object.keys(s).sort(), Object.keys(basic.statistics).sort(), 'every key present');
    assert.equal(s.count, 4);
    assertStatistics(s, basic.statistics);
    for (const [q, want] of basic.quantiles) assertClose(v.quantile(q), want, fixtures.quantileTolerance, `q${q}`);
    v[Symbol.dispose]();
  });

  test('empty and single-value vectors', () => {
    const v = new Vector();
    assert.equal(v.mean(), undefined);
    assert.equal(v.quantile(0.5), undefined);
    assertStatistics(v.statistics(), fixtures.empty.statistics);
    v.addValues(fixtures.single.values);
    assertStatistics(v.statistics(), fixtures.single.statistics);
    v.dispose();
  });

  test('non-finite input throws VectorError with the index; nothing stored', () => {
    const v = Vector.from(basic.values);
    for (const { values, index } of fixtures.nonFinite) {
      for (const input of [values, Float64Array.from(values)]) {
        assert.throws(
          () => v.addValues(input),
          (err) => err instanceof VectorError && err instanceof RangeError && err.code === 'non-finite' && err.index === index,
        );
      }
    }
    assert.throws(() => v.addValue(NaN), { name: 'VectorError', code: 'non-finite', index: 0 });
    assert.throws(() => new Vector([1, Infinity]), { code: 'non-finite', index: 1, message: /index 1 .*Infinity/ });
    assert.equal(v.len(), 4);
    assert.deepEqual(Array.from(v.toFloat64Array()), basic.values);
  });

  test('invalid quantiles throw VectorError', () => {
    const v = Vector.from(basic.values);
    for (const q of fixtures.invalidQuantiles) {
      assert.throws(() => v.quantile(q), (err) => err instanceof VectorError && err.code === 'invalid-quantile' && Object.is(err.quantile, q));
    }
  });

  test('input validation: clear TypeErrors, never silent reinterpretation', () => {
    const v = new Vector();
    const refused = [
      [new BigInt64Array([1n, 2n]), /Float64Array or an array of numbers, not a BigInt64Array.*Float64Array\.from/],
      [new Float32Array([1, 2]), /not a Float32Array/],
      [new Int32Array([1, 2]), /not an Int32Array/],
      [new DataView(new ArrayBuffer(16)), /not a DataView/],
      ['1,2,3', /not a string \("1,2,3"\)/],
      [{ length: 2, 0: 1, 1: 2 }, /not an object/],
      [null, /not null/],
      [undefined, /not undefined/],
      [[1, '2'], /element 1 is a string/],
      [[1, 2n], /element 1 is a bigint/],
      [[1, , 3], /element 1 is undefined/], // eslint-disable-line no-sparse-arrays
    ];
    for (const [input, message] of refused) assert.throws(() => v.addValues(input), { name: 'TypeError', message });
    assert.throws(() => v.addValue('1'), TypeError);
    assert.throws(() => v.addValue(1n), TypeError);
    assert.throws(() => v.quantile('0.5'), TypeError);
    assert.throws(() => v.sort('sideways'), RangeError);
    assert.throws(() => v.read(-1, 2), RangeError);
    assert.throws(() => v.read(0, 2 ** 32), RangeError);
    assert.throws(() => v.read(0.5, 2), RangeError);
    assert.throws(() => compute(-1), RangeError);
    assert.throws(() => compute(2 ** 32), RangeError);
    assert.throws(() => compute(1.5), RangeError);
    assert.equal(v.len(), 0, 'nothing stored by refused calls');
    const data = new Float64Array([3, 1]);
    assert.equal(toFloat64Array(data), data, 'a Float64Array is passed without a copy');
  });

  test('compute', () => {
    for (const { n, result } of fixtures.compute) {
      assertClose(compute(n), result, fixtures.computeRelativeTolerance, `compute(${n})`);
    }
  });

  test('one million values: bulk add, sort and statistics agree with plain JavaScript', () => {
    const data = randomValues(1_000_000);
    const v = new Vector(data);
    assert.equal(v.len(), data.length);
    const sorted = v.sorted();
    const expected = data.slice().sort();
    assert.equal(sorted.length, expected.length);
    assert.ok(sorted.every((x, i) => x === expected[i]), 'same order as Float64Array.prototype.sort');
    let sum = 0;
    for (const x of data) sum += x;
    assertClose(v.mean(), sum / data.length, 1e-9, 'mean');
    const s = v.statistics();
    assert.equal(s.min, expected[0]);
    assert.equal(s.max, expected[expected.length - 1]);
    const h = (expected.length - 1) * 0.5;
    assertClose(s.median, expected[Math.floor(h)] + (h % 1) * (expected[Math.ceil(h)] - expected[Math.floor(h)]), 1e-12, 'median');
    v.dispose();
  });
});
