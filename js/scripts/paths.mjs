// Where the repository's build outputs are: cargo's target directory, which
// `cargo xtask` exports as VECPROC_TARGET_DIR (from `cargo metadata`, so
// CARGO_TARGET_DIR is honoured), else `target/` under the repository root.
// Every script, test and benchmark here takes its paths from this module.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const jsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(jsRoot, '..');
export const targetDir = process.env.VECPROC_TARGET_DIR
  ? resolve(repoRoot, process.env.VECPROC_TARGET_DIR)
  : join(repoRoot, 'target');
/** `<target>/wasm/NAME`: a built component or module. */
export const wasmPath = (name) => join(targetDir, 'wasm', name);
