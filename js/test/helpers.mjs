// Shared by the Node, HTTP and browser tests: fixtures, comparisons, ports.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { jsRoot } from '../scripts/paths.mjs';

export { jsRoot, repoRoot, targetDir, wasmPath } from '../scripts/paths.mjs';

/**
 * A suite's skip reason for a missing prerequisite (a file not built, a tool
 * not found), or `false` when nothing is missing. Under
 * `VECPROC_REQUIRE_ALL=1`, which `cargo xtask test` and so CI set, a missing
 * prerequisite throws instead: the file fails rather than passing with
 * nothing tested. Run by hand without it, a suite still skips and says why.
 */
export function prerequisite(...missing) {
  const reason = missing.find(Boolean) ?? false;
  if (reason && process.env.VECPROC_REQUIRE_ALL === '1') {
    throw new Error(`missing prerequisite (VECPROC_REQUIRE_ALL=1): ${reason}`);
  }
  return reason;
}

const NON_FINITE = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/** test/fixtures.json with "NaN" / "Infinity" / "-Infinity" strings decoded. */
export const fixtures = JSON.parse(readFileSync(join(jsRoot, 'test', 'fixtures.json'), 'utf8'), (_key, value) =>
  typeof value === 'string' && Object.hasOwn(NON_FINITE, value) ? NON_FINITE[value] : value,
);

const QUANTILE_KEYS = new Set(['median', 'p25', 'p75', 'p90', 'p99']);

/** Asserts `actual` within `rel` relative tolerance (absolute near zero). */
export function assertClose(actual, expected, rel, what) {
  assert.equal(typeof actual, 'number', `${what}: ${actual} is not a number`);
  const scale = Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= rel * scale, `${what}: ${actual} is not within ${rel} of ${expected}`);
}

/**
 * Compares a statistics object with a fixture's: `null` in the fixture means
 * absent (`undefined` from the API, `null` over HTTP); quantiles within the
 * fixtures' tolerance, everything else exactly. `keyOf` maps fixture keys.
 */
export function assertStatistics(actual, expected, { absent = undefined, keyOf = (k) => k } = {}) {
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[keyOf(key)];
    if (want === null) assert.equal(got, absent, `${key} should be absent`);
    else if (QUANTILE_KEYS.has(key)) assertClose(got, want, fixtures.quantileTolerance, key);
    else assert.equal(got, want, key);
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** Deterministic pseudo-random doubles in [0, 1) (xorshift64*), for reproducible data. */
export function randomValues(n, seed = 0x9e3779b97f4a7c15n) {
  const out = new Float64Array(n);
  let x = BigInt.asUintN(64, seed || 1n);
  for (let i = 0; i < n; i++) {
    x ^= x >> 12n;
    x ^= BigInt.asUintN(64, x << 25n);
    x ^= x >> 27n;
    const r = BigInt.asUintN(64, x * 0x2545f4914f6cdd1dn);
    out[i] = Number(r >> 11n) / 2 ** 53;
  }
  return out;
}
