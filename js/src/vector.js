// The vector-processor component as an idiomatic JavaScript API, for Node and
// browsers. It wraps the module that `jco transpile` generates from
// target/wasm/vector-processor.wasm (run `npm run transpile` first) and adds
// what the generated bindings leave to the caller:
//
// - input validation with clear errors: `list<f64>` arguments take a
//   Float64Array or an array of numbers; anything else (a BigInt64Array, which
//   the bindings would silently reinterpret, a Float32Array, strings) is a
//   TypeError naming what was passed;
// - refusals of the component (`vector-error`) become `VectorError`s carrying
//   the WIT case as `code` and the offending index or quantile;
// - numbers instead of BigInts for counts and offsets, default sort orders,
//   `asc`/`desc` shorthands, and `Symbol.dispose` for `using`.
//
// Types: vector.d.ts next to this file.

import { vectorProcessor as wit } from '../gen/vector-processor/vector-processor.js';

const U32_MAX = 0xffff_ffff;

/** Sort orders accepted by `sort` and `sorted`, mapped to the WIT enum. */
const ORDERS = new Map([
  ['ascending', 'ascending'],
  ['asc', 'ascending'],
  ['descending', 'descending'],
  ['desc', 'descending'],
]);

/** A call refused by the component: the WIT `vector-error` variant. */
export class VectorError extends RangeError {
  /**
   * @param {'non-finite' | 'invalid-quantile'} code
   * @param {string} message
   * @param {{ index?: number, quantile?: number, cause?: unknown }} details
   */
  constructor(code, message, { index, quantile, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'VectorError';
    this.code = code;
    if (index !== undefined) this.index = index;
    if (quantile !== undefined) this.quantile = quantile;
  }
}

/** Converts the `ComponentError` jco throws for an `error` result. */
function fromComponentError(err, values) {
  const payload = err?.payload;
  if (payload?.tag === 'non-finite') {
    const index = Number(payload.val);
    const value = values === undefined ? undefined : values[index];
    const shown = value === undefined ? '' : ` (${value})`;
    return new VectorError('non-finite', `value at index ${index} is not finite${shown}; nothing was added`, {
      index,
      cause: err,
    });
  }
  if (payload?.tag === 'invalid-quantile') {
    const quantile = payload.val;
    return new VectorError('invalid-quantile', `quantile ${quantile} is outside [0, 1]`, { quantile, cause: err });
  }
  return err;
}

function article(word) {
  return /^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`;
}

function describe(value) {
  if (value === null || value === undefined) return String(value);
  if (ArrayBuffer.isView(value)) return article(value.constructor.name);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  const shown = typeof value === 'bigint' ? `${value}n` : typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `${article(typeof value)} (${shown})`;
}

/**
 * Validates a `list<f64>` argument and returns it as a Float64Array without
 * copying when it already is one.
 * @param {Float64Array | readonly number[]} values
 * @param {string} where for error messages
 * @returns {Float64Array}
 */
export function toFloat64Array(values, where = 'values') {
  if (values instanceof Float64Array) return values;
  if (Array.isArray(values)) {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number') {
        throw new TypeError(`${where}: element ${i} is ${describe(values[i])}, not a number`);
      }
    }
    return Float64Array.from(values);
  }
  const hint = ArrayBuffer.isView(values)
    ? '; convert explicitly, e.g. Float64Array.from(values, Number)'
    : '';
  throw new TypeError(`${where} must be a Float64Array or an array of numbers, not ${describe(values)}${hint}`);
}

function checkNumber(value, what) {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, not ${describe(value)}`);
  return value;
}

function checkIndex(value, what, max) {
  if (typeof value === 'bigint') value = Number(value);
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} must be an integer in [0, ${max}], not ${String(value)}`);
  }
  return value;
}

function checkOrder(order) {
  const witCase = ORDERS.get(order);
  if (witCase === undefined) {
    throw new RangeError(`order must be 'ascending' or 'descending' (or 'asc', 'desc'), not ${JSON.stringify(order)}`);
  }
  return witCase;
}

/** Converts the WIT `statistics` record: `count` as a number, every key present. */
function toStatistics(s) {
  return {
    count: Number(s.count),
    sum: s.sum,
    mean: s.mean,
    min: s.min,
    max: s.max,
    variance: s.variance,
    stddev: s.stddev,
    sampleVariance: s.sampleVariance,
    sampleStddev: s.sampleStddev,
    median: s.median,
    p25: s.p25,
    p75: s.p75,
    p90: s.p90,
    p99: s.p99,
  };
}

/** A vector of finite f64 values held inside a WebAssembly component instance. */
export class Vector {
  #inner;

  /** @param {Float64Array | readonly number[]} [values] initial values */
  constructor(values) {
    this.#inner = new wit.Vector();
    if (values !== undefined) this.addValues(values);
  }

  /** A vector holding `values`. */
  static from(values) {
    return new Vector(values);
  }

  /** Appends one finite number. */
  addValue(value) {
    checkNumber(value, 'value');
    try {
      this.#inner.addValue(value);
    } catch (err) {
      throw fromComponentError(err, [value]);
    }
    return this;
  }

  /** Appends many values in one boundary crossing; all or nothing. */
  addValues(values) {
    const data = toFloat64Array(values);
    try {
      this.#inner.addValues(data);
    } catch (err) {
      throw fromComponentError(err, data);
    }
    return this;
  }

  /** Number of values held. */
  len() {
    return Number(this.#inner.len());
  }

  /** Same as `len()`. */
  get length() {
    return this.len();
  }

  /** Compensated (Neumaier) sum; 0 when empty. */
  sum() {
    return this.#inner.sum();
  }

  /** Arithmetic mean; `undefined` when empty. */
  mean() {
    return this.#inner.mean();
  }

  /** Sorts the held values in place. */
  sort(order = 'ascending') {
    this.#inner.sort(checkOrder(order));
    return this;
  }

  /** Sorts in place and returns a copy of all values in that order. */
  sorted(order = 'ascending') {
    return this.#inner.sorted(checkOrder(order));
  }

  /** Up to `limit` values from `offset`, in the current order. */
  read(offset = 0, limit = U32_MAX) {
    const from = checkIndex(offset, 'offset', Number.MAX_SAFE_INTEGER);
    const count = checkIndex(limit, 'limit', U32_MAX);
    return this.#inner.read(BigInt(from), count);
  }

  /** A copy of every value in the current order. */
  toFloat64Array() {
    return this.read(0, U32_MAX);
  }

  /** Removes every value. */
  clear() {
    this.#inner.clear();
    return this;
  }

  /** Summary statistics; options are `undefined` when empty. */
  statistics() {
    return toStatistics(this.#inner.statistics());
  }

  /** Type-7 quantile for `q` in [0, 1]; `undefined` when empty. */
  quantile(q) {
    checkNumber(q, 'q');
    try {
      return this.#inner.quantile(q);
    } catch (err) {
      throw fromComponentError(err);
    }
  }

  /** Frees the component resource now instead of at garbage collection. */
  dispose() {
    this.#inner[Symbol.dispose]();
  }

  [Symbol.dispose]() {
    this.dispose();
  }
}

/** The seed's kernel: sum over i in [0, n) of sin(i)·cos(i); n is a u32. */
export function compute(n) {
  return wit.compute(checkIndex(n, 'n', U32_MAX));
}
