//! The boundary section of the report: what the article's operations cost
//! across the JavaScript/WebAssembly boundary, from `js/bench/boundary.mjs`'s
//! records (`boundary-node.json`, `boundary-chromium.json`): the
//! wasm-bindgen module, the jco component and plain JavaScript, per runtime.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Operations and implementations, in table order.
const OPERATIONS: [&str; 5] = [
    "add one by one",
    "add in bulk",
    "sort",
    "mean",
    "read sorted",
];
const IMPLS: [&str; 3] = ["wasm-bindgen", "jco", "js"];

/// The section's markdown, or `None` when no runtime's record is there.
pub(crate) fn section(dir: &Path) -> Result<Option<String>> {
    let mut runs = Vec::new();
    for file in ["boundary-node.json", "boundary-chromium.json"] {
        let path = dir.join(file);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let record: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        runs.push(record);
    }
    let Some(first) = runs.first() else {
        return Ok(None);
    };
    let mut md = String::new();
    writeln!(md, "\n## The JavaScript boundary (median ms)\n")?;
    writeln!(
        md,
        "The article's operations on {} values (`js/bench/boundary.mjs`, {} runs after a warm-up): \
         the wasm-bindgen module (`target/web/`, sorted values read through its zero-copy view), \
         the jco component (sorted values copied out) and plain JavaScript (a growable \
         Float64Array, typed-array sort, the same compensated mean). \"one by one\" is one call per \
         value; its per-call cost is in brackets. The wasm-bindgen module is built for size \
         (opt-level s, LTO: the article's profile), the component as it ships (opt-level 3 with \
         SIMD).\n",
        first["n"], first["runs"]
    )?;
    write!(md, "| operation |")?;
    for run in &runs {
        for imp in IMPLS {
            write!(
                md,
                " {} {imp} |",
                short(run["runtime"].as_str().unwrap_or("?"))
            )?;
        }
    }
    writeln!(md)?;
    writeln!(md, "|---|{}", "---:|".repeat(runs.len() * IMPLS.len()))?;
    for op in OPERATIONS {
        write!(md, "| {op} |")?;
        for run in &runs {
            for imp in IMPLS {
                let result = run["results"].as_array().and_then(|rs| {
                    rs.iter()
                        .find(|r| r["op"].as_str() == Some(op) && r["impl"].as_str() == Some(imp))
                });
                match result {
                    Some(r) => {
                        write!(md, " {:.2}", r["medianMs"].as_f64().unwrap_or(f64::NAN))?;
                        if let Some(ns) = r["perCallNs"].as_f64() {
                            write!(md, " ({ns:.0} ns)")?;
                        }
                        write!(md, " |")?;
                    }
                    None => write!(md, " – |")?,
                }
            }
        }
        writeln!(md)?;
    }
    let runtimes: Vec<&str> = runs.iter().filter_map(|r| r["runtime"].as_str()).collect();
    writeln!(md, "\nRuntimes: {}.", runtimes.join(", "))?;
    Ok(Some(md))
}

/// "Node v22.1.0" → "Node", "Chromium 140.0" → "Chromium".
fn short(runtime: &str) -> &str {
    runtime.split(' ').next().unwrap_or(runtime)
}
