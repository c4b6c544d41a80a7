// The benchmark kernels in idiomatic plain JavaScript, for the JavaScript
// column of the "native vs WASM vs JavaScript" table (bench/kernels.mjs).
// Same definitions as crates/vecproc-core/src/kernels.rs and the WIT
// `kernels` interface; inputs come from bench/inputs.mjs.

import { createHash } from 'node:crypto';

// ---------------------------------------------------------------- sorting

/** Sorts an `Int32Array` in place, ascending (`TypedArray.prototype.sort`). */
export function sortI32Typed(values) {
  return values.sort();
}

/**
 * Sorts a `Float64Array` in place, ascending. For finite values the default
 * typed-array order is numeric order with -0 before +0: IEEE total order.
 */
export function sortF64Typed(values) {
  return values.sort();
}

const ascending = (a, b) => a - b;

/** Sorts a plain `Array` of numbers in place with a comparator. */
export function sortArray(values) {
  return values.sort(ascending);
}

/** v[0] + v[n >> 1] + v[n - 1] of a sorted sequence, 0 when empty. */
export function sortChecksum(sorted) {
  const n = sorted.length;
  if (n === 0) return 0;
  return Number(sorted[0]) + Number(sorted[n >> 1]) + Number(sorted[n - 1]);
}

// ---------------------------------------------------------------- blur

/**
 * 3x3 Gaussian blur of an RGBA image, weights [1 2 1; 2 4 2; 1 2 1] / 16,
 * rounded ((sum + 8) >> 4), every channel including alpha, neighbours clamped
 * to the edge. Returns a new `Uint8Array`.
 */
export function blur(width, height, rgba) {
  if (rgba.length !== width * height * 4) {
    throw new RangeError(`blur: ${rgba.length} bytes is not ${width} x ${height} x 4`);
  }
  const out = new Uint8Array(rgba.length);
  if (width === 0 || height === 0) return out;
  const stride = width * 4;
  const lastX = (width - 1) * 4;
  for (let y = 0; y < height; y++) {
    const up = (y > 0 ? y - 1 : 0) * stride;
    const mid = y * stride;
    const down = (y + 1 < height ? y + 1 : height - 1) * stride;
    for (let x = 0; x < stride; x += 4) {
      const l = x > 0 ? x - 4 : 0;
      const r = x < lastX ? x + 4 : lastX;
      for (let c = 0; c < 4; c++) {
        const top = rgba[up + l + c] + 2 * rgba[up + x + c] + rgba[up + r + c];
        const centre = rgba[mid + l + c] + 2 * rgba[mid + x + c] + rgba[mid + r + c];
        const bottom = rgba[down + l + c] + 2 * rgba[down + x + c] + rgba[down + r + c];
        out[mid + x + c] = (top + 2 * centre + bottom + 8) >> 4;
      }
    }
  }
  return out;
}

/** Sum of all bytes. */
export function byteSum(bytes) {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum += bytes[i];
  return sum;
}

// ---------------------------------------------------------------- matmul

/** c = a * b for row-major n x n `Float64Array`s, naive i-k-j order. */
export function matmul(n, a, b) {
  if (a.length !== n * n || b.length !== n * n) {
    throw new RangeError(`matmul: operands of ${a.length} and ${b.length} values are not ${n} x ${n}`);
  }
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[row + k];
      const brow = k * n;
      for (let j = 0; j < n; j++) c[row + j] += aik * b[brow + j];
    }
  }
  return c;
}

/** Sum of all entries, plain, left to right. */
export function plainSum(values) {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum;
}

// ---------------------------------------------------------------- sha256

// FIPS 180-4 constants, derived rather than tabulated: the first 32 bits of
// the fractional parts of the cube roots of the first 64 primes (K) and of
// the square roots of the first 8 primes (initial hash value).
function firstPrimes(count) {
  const primes = [];
  for (let p = 2; primes.length < count; p++) {
    if (primes.every((q) => p % q !== 0)) primes.push(p);
  }
  return primes;
}
const fraction32 = (x) => Math.floor((x - Math.floor(x)) * 4294967296) | 0;
const PRIMES = firstPrimes(64);
const K = Int32Array.from(PRIMES, (p) => fraction32(Math.cbrt(p)));
const H0 = Int32Array.from(PRIMES.slice(0, 8), (p) => fraction32(Math.sqrt(p)));

/** Processes the 64-byte block of `d` at `off` into state `h`, using `w`. */
function compress(h, w, d, off) {
  for (let t = 0; t < 16; t++, off += 4) {
    w[t] = (d[off] << 24) | (d[off + 1] << 16) | (d[off + 2] << 8) | d[off + 3];
  }
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15];
    const y = w[t - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
  }
  let a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6];
  let dd = h[3], hh = h[7];
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + S1 + ch + K[t] + w[t]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (dd + t1) | 0;
    dd = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + dd) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + hh) | 0;
}

/** SHA-256 of a `Uint8Array` in plain JavaScript; returns 32 bytes. */
export function sha256(data) {
  const h = Int32Array.from(H0);
  const w = new Int32Array(64);
  const n = data.length;
  const full = n - (n % 64);
  for (let off = 0; off < full; off += 64) compress(h, w, data, off);
  // Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian.
  const rest = n - full;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(data.subarray(full));
  tail[rest] = 0x80;
  const view = new DataView(tail.buffer);
  view.setUint32(tail.length - 8, Math.floor(n / 0x20000000));
  view.setUint32(tail.length - 4, (n << 3) >>> 0);
  for (let off = 0; off < tail.length; off += 64) compress(h, w, tail, off);
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  for (let i = 0; i < 8; i++) out.setInt32(i * 4, h[i]);
  return digest;
}

/** SHA-256 through node:crypto (native code: OpenSSL), as a `Uint8Array`. */
export function sha256NodeCrypto(data) {
  const d = createHash('sha256').update(data).digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** The first 6 bytes of a digest as a big-endian integer. */
export function digestChecksum(digest) {
  let acc = 0;
  for (let i = 0; i < 6; i++) acc = acc * 256 + digest[i];
  return acc;
}

// ---------------------------------------------------------------- compute

/** The seed's kernel: sum over i in [0, n) of sin(i) * cos(i), left to right. */
export function compute(n) {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += Math.sin(i) * Math.cos(i);
  return acc;
}

// ---------------------------------------------------------------- statistics

/** Type-7 quantile (linear between closest ranks) of ascending values. */
function quantileSorted(sorted, q) {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const x = sorted[lo];
  return lo + 1 < sorted.length ? x + (h - lo) * (sorted[lo + 1] - x) : x;
}

/**
 * Summary statistics of a `Float64Array`, as the component's `statistics`:
 * Neumaier-compensated sum, mean, two-pass population variance and stddev,
 * min, max, and type-7 median and percentiles of a sorted copy. Every field
 * but `count` and `sum` is undefined when there are no values.
 */
export function statistics(values) {
  const n = values.length;
  if (n === 0) return { count: 0, sum: 0 };
  let sum = 0;
  let comp = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = values[i];
    const t = sum + x;
    if (Math.abs(sum) >= Math.abs(x)) comp += sum - t + x;
    else comp += x - t + sum;
    sum = t;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  sum += comp;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    squares += d * d;
  }
  const variance = squares / n;
  const sorted = values.slice().sort();
  return {
    count: n,
    sum,
    mean,
    min,
    max,
    variance,
    stddev: Math.sqrt(variance),
    median: quantileSorted(sorted, 0.5),
    p25: quantileSorted(sorted, 0.25),
    p75: quantileSorted(sorted, 0.75),
    p90: quantileSorted(sorted, 0.9),
    p99: quantileSorted(sorted, 0.99),
  };
}
