// The demo page, the article's flow: N random values go into WebAssembly one
// by one and then in one bulk call (a Float64Array), are sorted and
// summarised there, and the sorted values are read back; the same sort and
// mean run in plain JavaScript beside it.
//
// Two WebAssembly builds of the same vecproc-core, chosen with the
// "WebAssembly" switch: the vector-processor component through jco (from
// js/gen/, `npm run transpile`, via the typed API in js/src/vector.js), and
// the wasm-bindgen module (target/web/web/, `cargo xtask build`, served under
// /web/), whose sorted values are read through a zero-copy view.
//
// The page is served from js/ (scripts/serve-demo.mjs). `?seed=S` makes the
// data reproducible (so both builds can be given the same values). After a
// run, `window.demo` holds the data and results for the browser test.

const $ = (id) => document.getElementById(id);
const MAX_N = 20_000_000;
const HISTOGRAM_BINS = 64;

const ui = {
  form: $('controls'),
  n: $('n'),
  impl: $('impl'),
  distribution: $('distribution'),
  run: $('run'),
  status: $('status'),
};

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

/** Lets the browser paint before a long synchronous step. */
const nextFrame = () => new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));

/** Milliseconds taken by `fn`, and its result. */
function timed(fn) {
  const start = performance.now();
  const value = fn();
  return { ms: performance.now() - start, value };
}

const fmtMs = (ms) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms';
const fmtNum = (x) => (x === undefined ? '—' : Number.isInteger(x) ? x.toLocaleString('en-US') : x.toPrecision(10));
const fmtFull = (x) => (x === undefined ? '—' : String(x));

function showValue(id, value, text) {
  const el = $(id);
  el.value = text;
  el.textContent = text;
  el.dataset.value = String(value);
}

// ---------------------------------------------------------------- data

/** mulberry32: a small seeded generator of doubles in [0, 1). */
function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills a Float64Array with `n` values of the chosen distribution. */
function generate(n, distribution, random = Math.random) {
  const data = new Float64Array(n);
  const normal = () => {
    // Box-Muller; 1 - random() is in (0, 1], so the log is finite.
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  if (distribution === 'uniform') for (let i = 0; i < n; i++) data[i] = random();
  else if (distribution === 'lognormal') for (let i = 0; i < n; i++) data[i] = Math.exp(0.6 * normal());
  else for (let i = 0; i < n; i++) data[i] = normal();
  return data;
}

/** The naive JavaScript mean (what most code writes). */
function jsMean(values) {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

/** Bin counts of ascending `sorted` values over [min, max]. */
function histogram(sorted, bins) {
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  const width = (max - min) / bins || 1;
  const counts = new Uint32Array(bins);
  for (let i = 0; i < sorted.length; i++) {
    counts[Math.min(bins - 1, Math.floor((sorted[i] - min) / width))]++;
  }
  return { min, max, width, counts };
}

// ---------------------------------------------------------------- drawing

function drawHistogram(canvas, hist, stats) {
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(name).trim();
  const dpr = window.devicePixelRatio || 1;
  const { width: cssWidth, height: cssHeight } = canvas.getBoundingClientRect();
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);

  const pad = { left: 8, right: 8, top: 12, bottom: 26 };
  const plotW = cssWidth - pad.left - pad.right;
  const plotH = cssHeight - pad.top - pad.bottom;
  const peak = Math.max(...hist.counts);
  const barW = plotW / hist.counts.length;
  const x = (value) => pad.left + ((value - hist.min) / (hist.max - hist.min || 1)) * plotW;

  const gradient = ctx.createLinearGradient(0, pad.top, 0, pad.top + plotH);
  gradient.addColorStop(0, colour('--wasm'));
  gradient.addColorStop(1, `${colour('--wasm')}55`);
  ctx.fillStyle = gradient;
  hist.counts.forEach((count, i) => {
    const h = peak ? (count / peak) * plotH : 0;
    ctx.beginPath();
    ctx.roundRect(pad.left + i * barW + 1, pad.top + plotH - h, Math.max(1, barW - 2), h, [3, 3, 0, 0]);
    ctx.fill();
  });

  // Quartile and mean markers.
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  const markers = [
    ['p25', stats.p25],
    ['median', stats.median],
    ['p75', stats.p75],
  ];
  for (const [label, value] of markers) {
    if (value === undefined) continue;
    const at = x(value);
    ctx.strokeStyle = colour('--ink');
    ctx.globalAlpha = label === 'median' ? 0.8 : 0.4;
    ctx.setLineDash(label === 'median' ? [] : [4, 4]);
    ctx.beginPath();
    ctx.moveTo(at, pad.top);
    ctx.lineTo(at, pad.top + plotH);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = colour('--muted');
    ctx.fillText(label, at, cssHeight - 8);
  }
  ctx.setLineDash([]);
  ctx.textAlign = 'left';
  ctx.fillText(fmtNum(hist.min), pad.left, cssHeight - 8);
  ctx.textAlign = 'right';
  ctx.fillText(fmtNum(hist.max), cssWidth - pad.right, cssHeight - 8);
  ctx.strokeStyle = colour('--line');
  ctx.beginPath();
  ctx.moveTo(pad.left, pad.top + plotH + 0.5);
  ctx.lineTo(cssWidth - pad.right, pad.top + plotH + 0.5);
  ctx.stroke();
}

function showBars(pairs) {
  const longest = Math.max(...pairs.flatMap(([, a, , b]) => [a, b]));
  for (const [wasmId, wasmMs, jsId, jsMs] of pairs) {
    $(wasmId).style.width = `${(100 * wasmMs) / longest}%`;
    $(jsId).style.width = `${(100 * jsMs) / longest}%`;
  }
}

const STAT_ROWS = [
  ['count', 'count'],
  ['sum', 'sum'],
  ['mean', 'mean'],
  ['min', 'min'],
  ['max', 'max'],
  ['variance', 'variance (n)'],
  ['stddev', 'stddev (n)'],
  ['sampleVariance', 'variance (n − 1)'],
  ['sampleStddev', 'stddev (n − 1)'],
  ['p25', 'p25'],
  ['median', 'median'],
  ['p75', 'p75'],
  ['p90', 'p90'],
  ['p99', 'p99'],
];

function showStatistics(stats) {
  const dl = $('stats');
  dl.replaceChildren();
  for (const [key, label] of STAT_ROWS) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.key = key;
    dd.dataset.value = String(stats[key]);
    dd.title = fmtFull(stats[key]);
    dd.textContent = fmtNum(stats[key]);
    dl.append(dt, dd);
  }
}

function showFirstTen(values) {
  const ol = $('first-ten');
  ol.replaceChildren(
    ...Array.from(values, (v) => {
      const li = document.createElement('li');
      li.dataset.value = String(v);
      li.textContent = fmtFull(v);
      return li;
    }),
  );
}

// ---------------------------------------------------------------- the builds

/**
 * The two WebAssembly builds behind one shape: `create()` gives an object
 * with addOne, addBulk, clear, sort, mean, statistics (camelCase keys),
 * readSorted and dispose.
 */
const builds = {
  component: {
    label: 'component (jco)',
    readKind: '(copy out, read all)',
    api: null,
    async load() {
      this.api = await import('../src/vector.js');
    },
    create() {
      const v = new this.api.Vector();
      return {
        addOne: (x) => v.addValue(x),
        addBulk: (data) => v.addValues(data),
        clear: () => v.clear(),
        sort: () => v.sort('ascending'),
        mean: () => v.mean(),
        statistics: () => v.statistics(),
        readSorted: () => v.toFloat64Array(),
        dispose: () => v.dispose(),
      };
    },
  },
  bindgen: {
    label: 'wasm-bindgen module',
    readKind: '(zero-copy view)',
    module: null,
    async load() {
      // `--target web`: the default export fetches and instantiates
      // vecproc_web_bg.wasm and resolves to the module's exports (with
      // `memory`). The article reads `init.memory.buffer`, but `init` is the
      // loader function; `sorted_view()` makes reading the memory
      // unnecessary anyway.
      this.module = await import('../web/vecproc_web.js');
      await this.module.default();
    },
    create() {
      const v = new this.module.VectorProcessor();
      const camel = (key) => key.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
      return {
        addOne: (x) => v.add_value(x),
        addBulk: (data) => v.add_values(data),
        clear: () => v.clear(),
        sort: () => v.sort(),
        mean: () => v.mean(),
        statistics: () => Object.fromEntries(Object.entries(v.statistics()).map(([k, x]) => [camel(k), x])),
        readSorted: () => v.sorted_view(),
        dispose: () => v.free(),
      };
    },
  },
};

// ---------------------------------------------------------------- the run

let vector; // the last run's, freed at the next run

async function run(n, distribution, impl, seed) {
  ui.run.disabled = true;
  try {
    const build = builds[impl];
    setStatus('running', `Generating ${n.toLocaleString('en-US')} values…`);
    await nextFrame();
    const data = generate(n, distribution, seed === null ? Math.random : seeded(seed));

    setStatus('running', `WebAssembly (${build.label}): add one by one, add in bulk, sort, mean, statistics…`);
    await nextFrame();
    vector?.dispose();
    vector = build.create();
    const addOne = timed(() => {
      for (let i = 0; i < data.length; i++) vector.addOne(data[i]);
    });
    vector.clear();
    const add = timed(() => vector.addBulk(data));
    const sort = timed(() => vector.sort());
    const mean = timed(() => vector.mean());
    const stats = timed(() => vector.statistics());
    const copy = timed(() => vector.readSorted());
    const wasmSorted = copy.value;

    setStatus('running', 'JavaScript: Float64Array sort and mean…');
    await nextFrame();
    const jsCopy = timed(() => data.slice());
    const jsSorted = jsCopy.value;
    const jsSort = timed(() => jsSorted.sort());
    const jsMeanT = timed(() => jsMean(data));

    let sameOrder = wasmSorted.length === jsSorted.length;
    for (let i = 0; sameOrder && i < jsSorted.length; i++) sameOrder = wasmSorted[i] === jsSorted[i];

    showValue('wasm-sort-ms', sort.ms, fmtMs(sort.ms));
    showValue('js-sort-ms', jsSort.ms, fmtMs(jsSort.ms));
    showValue('wasm-mean-ms', mean.ms, fmtMs(mean.ms));
    showValue('js-mean-ms', jsMeanT.ms, fmtMs(jsMeanT.ms));
    showValue('wasm-add-ms', add.ms, fmtMs(add.ms));
    showValue('js-copy-ms', jsCopy.ms, fmtMs(jsCopy.ms));
    showValue('wasm-stats-ms', stats.ms, fmtMs(stats.ms));
    showValue('wasm-copy-ms', copy.ms, fmtMs(copy.ms));
    showValue('wasm-add-one-ms', addOne.ms, fmtMs(addOne.ms));
    $('read-kind').textContent = build.readKind;
    showValue('wasm-mean', mean.value, fmtFull(mean.value));
    showValue('js-mean', jsMeanT.value, fmtFull(jsMeanT.value));
    showValue('same-order', sameOrder, sameOrder ? 'identical ✓' : 'different ✗');
    $('same-order').style.color = sameOrder ? 'var(--ok)' : 'var(--bad)';
    showBars([
      ['bar-wasm-sort', sort.ms, 'bar-js-sort', jsSort.ms],
      ['bar-wasm-mean', mean.ms, 'bar-js-mean', jsMeanT.ms],
      ['bar-wasm-add', add.ms, 'bar-js-copy', jsCopy.ms],
    ]);
    const ratio = jsSort.ms / sort.ms;
    $('verdict').innerHTML =
      ratio >= 1
        ? `Sorting ${n.toLocaleString('en-US')} values: WebAssembly is <strong>${ratio.toFixed(1)}×</strong> as fast as <code>Float64Array.prototype.sort</code>.`
        : `Sorting ${n.toLocaleString('en-US')} values: <code>Float64Array.prototype.sort</code> is ${(1 / ratio).toFixed(1)}× as fast as WebAssembly here.`;

    showStatistics(stats.value);
    showFirstTen(wasmSorted.subarray(0, 10));
    const hist = histogram(wasmSorted, HISTOGRAM_BINS);
    drawHistogram($('histogram'), hist, stats.value);
    $('histogram').dataset.bins = String(hist.counts.length);
    $('histogram').dataset.total = String(hist.counts.reduce((a, b) => a + b, 0));
    $('histogram-caption').textContent =
      `${HISTOGRAM_BINS} bins of width ${fmtNum(hist.width)} from ${fmtNum(hist.min)} to ${fmtNum(hist.max)}; ` +
      `tallest bin ${Math.max(...hist.counts).toLocaleString('en-US')} values. Lines: p25, median, p75.`;

    window.demo = {
      n,
      distribution,
      impl,
      seed,
      data,
      wasmSorted,
      jsSorted,
      statistics: stats.value,
      mean: mean.value,
      jsMean: jsMeanT.value,
      sameOrder,
      timings: {
        wasmAddOneByOne: addOne.ms,
        wasmAdd: add.ms,
        wasmSort: sort.ms,
        wasmMean: mean.ms,
        wasmStatistics: stats.ms,
        wasmCopyOut: copy.ms,
        jsCopy: jsCopy.ms,
        jsSort: jsSort.ms,
        jsMean: jsMeanT.ms,
      },
    };
    setStatus('done', `Done: ${n.toLocaleString('en-US')} values (${build.label}).`);
  } catch (err) {
    console.error(err);
    setStatus('error', `Failed: ${err.message}`);
  } finally {
    ui.run.disabled = false;
  }
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const n = Number(ui.n.value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_N) {
    setStatus('error', `N must be a whole number from 1 to ${MAX_N.toLocaleString('en-US')}.`);
    return;
  }
  const seed = new URLSearchParams(location.search).get('seed');
  run(n, ui.distribution.value, ui.impl.value, seed === null ? null : Number(seed));
});

$('isolation').textContent = window.crossOriginIsolated
  ? 'The page is cross-origin isolated, so timers are precise to a few microseconds.'
  : 'The page is not cross-origin isolated: timers are coarse (about 0.1 ms).';

const missing = [];
for (const [name, build] of Object.entries(builds)) {
  try {
    await build.load();
  } catch (err) {
    console.warn(`${build.label}: ${err.message}`);
    missing.push(name === 'component' ? 'the component (npm run transpile in js/)' : 'the wasm-bindgen module (cargo xtask build)');
    ui.impl.querySelector(`option[value="${name}"]`).disabled = true;
  }
}
if (missing.length === Object.keys(builds).length) {
  ui.run.textContent = 'Unavailable';
  setStatus('error', `Could not load ${missing.join(' or ')}; build it and reload.`);
} else {
  if (ui.impl.selectedOptions[0].disabled) ui.impl.value = ui.impl.querySelector('option:not([disabled])').value;
  ui.run.disabled = false;
  ui.run.textContent = 'Run';
  setStatus('ready', missing.length ? `Ready (not built: ${missing.join(', ')}).` : 'Ready.');
  const preset = new URLSearchParams(location.search);
  if (preset.has('n')) ui.n.value = preset.get('n');
  if (preset.has('impl')) ui.impl.value = preset.get('impl');
  if (preset.has('autorun')) ui.form.requestSubmit();
}
