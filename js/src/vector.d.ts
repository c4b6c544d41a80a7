// Types of vector.js: the vector-processor component (vecproc:vector@0.1.0)
// as a JavaScript API for Node and browsers.

/** Sort orders; `asc` and `desc` are shorthands. */
export type SortOrder = 'ascending' | 'descending' | 'asc' | 'desc';

/** Anything `addValues` accepts: other typed arrays are refused (TypeError). */
export type Values = Float64Array | readonly number[];

/**
 * Summary statistics (see wit/vector-processor.wit). Every `number | undefined`
 * is `undefined` exactly when the vector is empty; the sample variants also
 * below two values. Variance is the population variance (divide by n), the
 * quantiles are Hyndman-Fan type 7 (NumPy's default).
 */
export interface Statistics {
  count: number;
  /** Neumaier-compensated; 0 when empty. */
  sum: number;
  mean: number | undefined;
  min: number | undefined;
  max: number | undefined;
  variance: number | undefined;
  stddev: number | undefined;
  sampleVariance: number | undefined;
  sampleStddev: number | undefined;
  median: number | undefined;
  p25: number | undefined;
  p75: number | undefined;
  p90: number | undefined;
  p99: number | undefined;
}

/** A call refused by the component (the WIT `vector-error` variant). */
export class VectorError extends RangeError {
  readonly name: 'VectorError';
  readonly code: 'non-finite' | 'invalid-quantile';
  /** For `non-finite`: index of the first NaN or infinity in the argument. */
  readonly index?: number;
  /** For `invalid-quantile`: the quantile asked for. */
  readonly quantile?: number;
}

/**
 * Validates a `list<f64>` argument: a Float64Array is returned as is, an array
 * of numbers is copied into one, anything else throws a TypeError.
 */
export function toFloat64Array(values: Values, where?: string): Float64Array;

/** A vector of finite f64 values held inside a WebAssembly component instance. */
export class Vector implements Disposable {
  /** An empty vector, or one holding `values` (throws like `addValues`). */
  constructor(values?: Values);
  static from(values: Values): Vector;

  /** Appends one value. Throws `VectorError` (code `non-finite`, index 0) for NaN or ±Infinity. */
  addValue(value: number): this;
  /**
   * Appends many values in one boundary crossing, all or nothing. Throws
   * `VectorError` (code `non-finite`, with the index) if any value is not
   * finite, and `TypeError` for anything but a Float64Array or an array of numbers.
   */
  addValues(values: Values): this;

  /** Number of values held. */
  len(): number;
  /** Same as `len()`. */
  readonly length: number;
  /** Compensated sum; 0 when empty. */
  sum(): number;
  /** Arithmetic mean; `undefined` when empty. */
  mean(): number | undefined;

  /** Sorts the held values in place (default ascending). */
  sort(order?: SortOrder): this;
  /** Sorts in place and returns a copy of every value in that order. */
  sorted(order?: SortOrder): Float64Array;
  /** Up to `limit` values starting at `offset` in the current order; empty past the end. */
  read(offset?: number | bigint, limit?: number): Float64Array;
  /** A copy of every value in the current order. */
  toFloat64Array(): Float64Array;

  /** Removes every value. */
  clear(): this;
  statistics(): Statistics;
  /** Type-7 quantile, q in [0, 1]; `undefined` when empty. Throws `VectorError` (code `invalid-quantile`) otherwise. */
  quantile(q: number): number | undefined;

  /** Frees the component resource now. */
  dispose(): void;
  [Symbol.dispose](): void;
}

/** The seed's kernel: sum over i in [0, n) of sin(i)·cos(i), in plain f64. n is a u32. */
export function compute(n: number): number;
