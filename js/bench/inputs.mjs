// Deterministic kernel inputs, identical to the ones the component builds in
// the guest for `time-kernel` (crates/vecproc-core/src/kernels.rs) and to the
// native runner's: Marsaglia's xorshift32 (13, 17, 5) seeded with 0x9e3779b9,
// a fresh generator for each kernel's input.
//
// - i32 values: each output reinterpreted as i32;
// - f64 values: x / 2^32 * 2e6 - 1e6, in [-1e6, 1e6);
// - bytes (blur image, sha256 data): the low 8 bits of each output;
// - matmul: a (n*n values) then b (n*n values) from the same generator,
//   each x / 2^32 * 2 - 1, in [-1, 1).

/** The generator's seed. */
export const SEED = 0x9e3779b9;

/** A fresh xorshift32 generator: each call returns the next u32 output. */
export function xorshift32(seed = SEED) {
  let x = seed >>> 0;
  return function next() {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x >>>= 0;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** `n` i32 values (`Int32Array`). */
export function i32Values(n) {
  const next = xorshift32();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() | 0;
  return out;
}

/** `n` f64 values in [-1e6, 1e6) (`Float64Array`). */
export function f64Values(n) {
  const next = xorshift32();
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() / 4294967296) * 2e6 - 1e6;
  return out;
}

/** `n` bytes (`Uint8Array`). */
export function bytes(n) {
  const next = xorshift32();
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Height of the blur image for a width (16:9, rounded down). */
export function blurHeight(width) {
  return Math.floor((width * 9) / 16);
}

/** The blur kernel's RGBA image for `size`: `{ width, height, rgba }`. */
export function image(size) {
  const width = size;
  const height = blurHeight(size);
  return { width, height, rgba: bytes(width * height * 4) };
}

/** The matmul kernel's operands for `n`: `{ n, a, b }`, row-major. */
export function matrices(n) {
  const next = xorshift32();
  const a = new Float64Array(n * n);
  const b = new Float64Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = (next() / 4294967296) * 2 - 1;
  for (let i = 0; i < b.length; i++) b[i] = (next() / 4294967296) * 2 - 1;
  return { n, a, b };
}

/**
 * The input of `kernel` at `size`, in the shape the kernels in
 * `kernels-plain.mjs` and the component's functions take.
 */
export function inputFor(kernel, size) {
  switch (kernel) {
    case 'sort-i32':
      return i32Values(size);
    case 'sort-f64':
    case 'statistics':
      return f64Values(size);
    case 'blur':
      return image(size);
    case 'matmul':
      return matrices(size);
    case 'sha256':
      return bytes(size);
    case 'compute':
    case 'compute-libm':
      return size;
    default:
      throw new Error(`unknown kernel ${JSON.stringify(kernel)}`);
  }
}
