// The boundary benchmark's cases, shared by the Node runner (boundary.mjs)
// and the Chromium page (boundary.html): the article's operations on N
// values, for each implementation of the same vector processor:
//
// - `wasm-bindgen`: the wasm-bindgen module (target/web/, crates/vecproc-web);
//   sorted values read through its zero-copy view;
// - `jco`: the vector-processor component through jco's generated bindings;
//   sorted values copied out (the component model copies lists);
// - `js`: plain JavaScript on a growable Float64Array, the best plain JS does
//   here: typed-array sort, a compensated (Neumaier) mean like ours, a
//   subarray for the sorted values.
//
// Operations: add N values one call each, add them in one bulk call, sort,
// mean, read the sorted values. Every case runs after one warm-up; setup and
// teardown are untimed.

/** Reproducible doubles in [-1e6, 1e6) (mulberry32 pairs). */
export function randomValues(n, seed = 42) {
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

/** Plain JavaScript with the same operations. */
class PlainVector {
  constructor() {
    this.values = new Float64Array(16);
    this.length = 0;
  }
  reserve(extra) {
    if (this.length + extra <= this.values.length) return;
    const grown = new Float64Array(Math.max(this.values.length * 2, this.length + extra));
    grown.set(this.values.subarray(0, this.length));
    this.values = grown;
  }
  addValue(x) {
    if (!Number.isFinite(x)) throw new Error('not a finite number');
    this.reserve(1);
    this.values[this.length++] = x;
  }
  addValues(data) {
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new Error(`value ${i} is not finite`);
    this.reserve(data.length);
    this.values.set(data, this.length);
    this.length += data.length;
  }
  sort() {
    this.values.subarray(0, this.length).sort();
  }
  mean() {
    if (this.length === 0) return undefined;
    let sum = 0;
    let c = 0;
    for (let i = 0; i < this.length; i++) {
      const x = this.values[i];
      const t = sum + x;
      c += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
      sum = t;
    }
    return (sum + c) / this.length;
  }
  sorted() {
    return this.values.subarray(0, this.length);
  }
}

/**
 * The implementations, given the loaded modules: `jco` is the generated
 * bindings' `vectorProcessor` namespace, `bindgen` the wasm-bindgen module's
 * exports. Each maps the operations onto its own API.
 */
export function implementations({ jco, bindgen }) {
  return [
    {
      name: 'wasm-bindgen',
      create: () => new bindgen.VectorProcessor(),
      addValue: (v, x) => v.add_value(x),
      addValues: (v, data) => v.add_values(data),
      sort: (v) => v.sort(),
      mean: (v) => v.mean(),
      readSorted: (v) => v.sorted_view(),
      readKind: 'zero-copy view',
      dispose: (v) => v.free(),
    },
    {
      name: 'jco',
      create: () => new jco.Vector(),
      addValue: (v, x) => v.addValue(x),
      addValues: (v, data) => v.addValues(data),
      sort: (v) => v.sort('ascending'),
      mean: (v) => v.mean(),
      readSorted: (v) => v.read(0n, 0xffffffff),
      readKind: 'copy out',
      dispose: (v) => v[Symbol.dispose](),
    },
    {
      name: 'js',
      create: () => new PlainVector(),
      addValue: (v, x) => v.addValue(x),
      addValues: (v, data) => v.addValues(data),
      sort: (v) => v.sort(),
      mean: (v) => v.mean(),
      readSorted: (v) => v.sorted(),
      readKind: 'subarray',
      dispose: () => {},
    },
  ];
}

/** Operations, in table order. */
export const OPERATIONS = ['add one by one', 'add in bulk', 'sort', 'mean', 'read sorted'];

/** The cases for `data`: every operation of every implementation. */
export function boundaryCases(data, impls) {
  const cases = [];
  for (const impl of impls) {
    const fresh = () => impl.create();
    const filled = () => {
      const v = impl.create();
      impl.addValues(v, data);
      return v;
    };
    const sortedOne = () => {
      const v = filled();
      impl.sort(v);
      return v;
    };
    const teardown = (v) => impl.dispose(v);
    cases.push(
      {
        op: 'add one by one',
        impl: impl.name,
        perCall: data.length,
        setup: fresh,
        body: (v) => {
          for (let i = 0; i < data.length; i++) impl.addValue(v, data[i]);
        },
        teardown,
      },
      { op: 'add in bulk', impl: impl.name, setup: fresh, body: (v) => impl.addValues(v, data), teardown },
      { op: 'sort', impl: impl.name, setup: filled, body: (v) => impl.sort(v), teardown },
      { op: 'mean', impl: impl.name, setup: filled, body: (v) => impl.mean(v), teardown },
      {
        op: 'read sorted',
        impl: impl.name,
        note: impl.readKind,
        setup: sortedOne,
        // Touch the first and last value so a lazy view is really made.
        body: (v) => {
          const sorted = impl.readSorted(v);
          if (!(sorted[0] <= sorted[sorted.length - 1])) throw new Error(`${impl.name}: not sorted`);
        },
        teardown,
      },
    );
  }
  return cases;
}

/** Times `c.body` `runs` times after one warm-up; min and median in ms. */
export function measure(runs, c) {
  const samples = [];
  for (let i = 0; i <= runs; i++) {
    const state = c.setup();
    const start = performance.now();
    c.body(state);
    const ms = performance.now() - start;
    c.teardown(state);
    if (i > 0) samples.push(ms);
  }
  const sorted = samples.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { minMs: sorted[0], medianMs: median, runsMs: samples };
}

/** Runs every case; records for the report (per-call ns where it applies). */
export function runAll(data, impls, runs, log = () => {}) {
  const results = [];
  for (const c of boundaryCases(data, impls)) {
    const r = measure(runs, c);
    const perCallNs = c.perCall ? (r.medianMs * 1e6) / c.perCall : undefined;
    results.push({ op: c.op, impl: c.impl, ...(c.note ? { note: c.note } : {}), ...r, ...(perCallNs === undefined ? {} : { perCallNs }) });
    log(`${c.op.padEnd(15)} ${c.impl.padEnd(13)} min ${r.minMs.toFixed(3).padStart(9)} ms  median ${r.medianMs.toFixed(3).padStart(9)} ms${perCallNs === undefined ? '' : `  ${perCallNs.toFixed(1)} ns/call`}`);
  }
  return results;
}
