// End to end in a real browser: Debian's Chromium, driven by playwright-core,
// loads the demo page from scripts/serve-demo.mjs, runs N = 1,000,000, checks
// what the page shows, records the WebAssembly and JavaScript sort timings
// (target/js/browser.json) and saves a screenshot (target/js/demo.png). Then
// it runs the article's flow on the same seeded values with both WebAssembly
// builds, the jco component and the wasm-bindgen module, and requires
// identical results.
//
// Needs /usr/bin/chromium (`apt-get install -y chromium`; CHROMIUM overrides
// the path), `npm run transpile` and `cargo xtask build` (target/web/) done
// first.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { startDemoServer } from '../scripts/serve-demo.mjs';
import { jsRoot, repoRoot, targetDir } from './helpers.mjs';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const outDir = join(targetDir, 'js');
const N = 1_000_000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('demo page in Chromium', () => {
  let server;
  let browser;
  let page;
  const problems = [];

  before(async () => {
    assert.ok(existsSync(executablePath), `${executablePath} is missing: apt-get install -y chromium`);
    assert.ok(
      existsSync(join(jsRoot, 'gen', 'vector-processor', 'vector-processor.js')),
      'js/gen/ is missing: run `npm run transpile` first',
    );
    assert.ok(
      existsSync(join(targetDir, 'web', 'web', 'vecproc_web.js')),
      'target/web/ is missing: run `cargo xtask build` first',
    );
    server = await startDemoServer({ port: 0, log: (line) => problems.push(`server: ${line}`) });
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('loads the component and runs one million values', async (t) => {
    await page.goto(server.url);
    await page.waitForSelector('#status:is([data-state="ready"], [data-state="error"])', { timeout: 30_000 });
    assert.equal(await page.getAttribute('#status', 'data-state'), 'ready', await page.textContent('#status'));
    assert.equal(await page.inputValue('#n'), String(N), 'N defaults to one million');

    await page.click('#run');
    await page.waitForSelector('#status:is([data-state="done"], [data-state="error"])', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#status', 'data-state'), 'done', await page.textContent('#status'));

    // What the page shows.
    const shown = await page.evaluate(() => {
      const num = (id) => Number(document.getElementById(id).dataset.value);
      const stats = {};
      for (const dd of document.querySelectorAll('#stats dd')) stats[dd.dataset.key] = Number(dd.dataset.value);
      return {
        wasmSortMs: num('wasm-sort-ms'),
        jsSortMs: num('js-sort-ms'),
        wasmMean: num('wasm-mean'),
        jsMean: num('js-mean'),
        sameOrder: document.getElementById('same-order').dataset.value,
        firstTen: Array.from(document.querySelectorAll('#first-ten li'), (li) => Number(li.dataset.value)),
        stats,
        bins: Number(document.getElementById('histogram').dataset.bins),
        histogramTotal: Number(document.getElementById('histogram').dataset.total),
        crossOriginIsolated: window.crossOriginIsolated,
      };
    });

    // Recomputed in the page from the generated data and the copied-out result.
    const checked = await page.evaluate(() => {
      const { data, wasmSorted } = window.demo;
      let ascending = true;
      for (let i = 1; i < wasmSorted.length; i++) if (!(wasmSorted[i - 1] <= wasmSorted[i])) ascending = false;
      // Neumaier-compensated mean, independent of the component.
      let sum = 0;
      let c = 0;
      for (const x of data) {
        const t = sum + x;
        c += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
        sum = t;
      }
      const reference = data.slice().sort();
      let samePermutation = reference.length === wasmSorted.length;
      for (let i = 0; samePermutation && i < reference.length; i++) samePermutation = reference[i] === wasmSorted[i];
      return {
        n: data.length,
        sortedLength: wasmSorted.length,
        ascending,
        samePermutation,
        mean: (sum + c) / data.length,
        head: Array.from(wasmSorted.subarray(0, 10)),
        first: wasmSorted[0],
        last: wasmSorted[wasmSorted.length - 1],
      };
    });

    assert.equal(checked.n, N);
    assert.equal(checked.sortedLength, N);
    assert.ok(checked.ascending, 'the component sorted ascending');
    assert.ok(checked.samePermutation, 'same values as Float64Array.prototype.sort of the input');
    assert.equal(shown.sameOrder, 'true', 'the page reports the same order');

    assert.equal(shown.firstTen.length, 10);
    assert.deepEqual(shown.firstTen, checked.head, 'first ten shown are the sorted head');
    for (let i = 1; i < 10; i++) assert.ok(shown.firstTen[i - 1] <= shown.firstTen[i], 'first ten ascending');

    const rel = Math.abs(shown.wasmMean - checked.mean) / Math.abs(checked.mean);
    assert.ok(rel <= 1e-9, `mean ${shown.wasmMean} vs recomputed ${checked.mean} (relative ${rel})`);
    assert.ok(Math.abs(shown.jsMean - checked.mean) <= 1e-9 * Math.max(1, Math.abs(checked.mean)), 'JS mean shown');

    const keys = ['count', 'sum', 'mean', 'min', 'max', 'variance', 'stddev', 'sampleVariance', 'sampleStddev', 'median', 'p25', 'p75', 'p90', 'p99'];
    for (const key of keys) assert.ok(Number.isFinite(shown.stats[key]), `statistic ${key} shown: ${shown.stats[key]}`);
    assert.equal(shown.stats.count, N);
    assert.equal(shown.stats.min, checked.first);
    assert.equal(shown.stats.max, checked.last);
    assert.equal(shown.stats.mean, shown.wasmMean);
    assert.ok(shown.stats.min <= shown.stats.p25 && shown.stats.p25 <= shown.stats.median);
    assert.ok(shown.stats.median <= shown.stats.p75 && shown.stats.p75 <= shown.stats.p90);
    assert.ok(shown.stats.p90 <= shown.stats.p99 && shown.stats.p99 <= shown.stats.max);
    assert.ok(shown.stats.variance > 0 && shown.stats.sampleVariance > shown.stats.variance);
    assert.ok(shown.bins > 0 && shown.histogramTotal === N, 'histogram covers every value');

    assert.ok(shown.wasmSortMs > 0 && Number.isFinite(shown.wasmSortMs), 'WASM sort time shown');
    assert.ok(shown.jsSortMs > 0 && Number.isFinite(shown.jsSortMs), 'JS sort time shown');
    assert.deepEqual(problems, [], 'no page errors, console errors or failed requests');

    mkdirSync(outDir, { recursive: true });
    const screenshot = join(outDir, 'demo.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    const timings = await page.evaluate(() => window.demo.timings);
    const browserVersion = browser.version();
    writeFileSync(
      join(outDir, 'browser.json'),
      `${JSON.stringify({ browser: `Chromium ${browserVersion}`, n: N, crossOriginIsolated: shown.crossOriginIsolated, timingsMs: timings }, null, 2)}\n`,
    );
    t.diagnostic(
      `Chromium ${browserVersion}, N=${N}: sort WASM ${shown.wasmSortMs.toFixed(1)} ms, ` +
        `Float64Array.sort ${shown.jsSortMs.toFixed(1)} ms; screenshot ${screenshot}`,
    );
  });

  test('both WebAssembly builds give identical results on the same values', async (t) => {
    const runWith = async (impl) => {
      await page.selectOption('#impl', impl);
      await page.click('#run');
      await page.waitForSelector('#status:is([data-state="done"], [data-state="error"])', { timeout: 120_000 });
      assert.equal(await page.getAttribute('#status', 'data-state'), 'done', await page.textContent('#status'));
      assert.match(await page.textContent('#status'), impl === 'bindgen' ? /wasm-bindgen/ : /component/);
    };
    await page.goto(`${server.url}?seed=20261204`);
    await page.waitForSelector('#status[data-state="ready"]', { timeout: 30_000 });
    assert.equal(await page.textContent('#status'), 'Ready.', 'both builds loaded');
    await runWith('component');
    await page.evaluate(() => {
      window.componentRun = window.demo;
    });
    await runWith('bindgen');
    const compared = await page.evaluate(() => {
      const a = window.componentRun;
      const b = window.demo;
      let sameData = a.data.length === b.data.length;
      for (let i = 0; sameData && i < a.data.length; i++) sameData = Object.is(a.data[i], b.data[i]);
      let sameSorted = a.wasmSorted.length === b.wasmSorted.length;
      for (let i = 0; sameSorted && i < a.wasmSorted.length; i++) sameSorted = Object.is(a.wasmSorted[i], b.wasmSorted[i]);
      const differing = Object.keys(a.statistics).filter((k) => !Object.is(a.statistics[k], b.statistics[k]));
      return {
        impls: [a.impl, b.impl],
        n: b.n,
        sameData,
        sameSorted,
        viewIsZeroCopy: b.wasmSorted.buffer.byteLength > b.wasmSorted.byteLength,
        differing,
        means: [a.mean, b.mean],
        firstTen: [Array.from(a.wasmSorted.subarray(0, 10)), Array.from(b.wasmSorted.subarray(0, 10))],
        timings: { component: a.timings, bindgen: b.timings },
      };
    });
    assert.deepEqual(compared.impls, ['component', 'bindgen']);
    assert.equal(compared.n, N);
    assert.ok(compared.sameData, 'the seed gave both builds the same values');
    assert.ok(compared.sameSorted, 'identical sorted values');
    assert.ok(compared.viewIsZeroCopy, 'the wasm-bindgen values were read through a view over its memory');
    assert.deepEqual(compared.differing, [], 'identical statistics');
    assert.ok(Object.is(compared.means[0], compared.means[1]), 'identical means');
    assert.deepEqual(compared.firstTen[0], compared.firstTen[1], 'identical first ten');
    for (const [impl, timings] of Object.entries(compared.timings)) {
      assert.ok(timings.wasmAddOneByOne > 0, `${impl}: one-by-one adds timed`);
    }
    assert.deepEqual(problems, [], 'no page errors, console errors or failed requests');
    t.diagnostic(
      `N=${N} one by one: component ${compared.timings.component.wasmAddOneByOne.toFixed(1)} ms, ` +
        `wasm-bindgen ${compared.timings.bindgen.wasmAddOneByOne.toFixed(1)} ms; read sorted: copy ` +
        `${compared.timings.component.wasmCopyOut.toFixed(2)} ms, view ${compared.timings.bindgen.wasmCopyOut.toFixed(2)} ms`,
    );
  });
});
