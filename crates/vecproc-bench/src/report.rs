//! `vecproc-bench report`: the kernel table from the runners' JSON records
//! (`rust.json`, `rust-portable-sha.json`, `js.json` in the report
//! directory), written as `report.md`, `report.json` and `chart.svg`, headed
//! by the run's commit, date, machine and versions. Fails if an exact
//! kernel's checksum differs from native's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use vecproc_harness::cmd::output;

/// Options of `vecproc-bench report`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory holding the runners' records; the report is written
    /// there too.
    #[arg(long, default_value_os_t = vecproc_harness::paths::bench_dir())]
    dir: PathBuf,
}

/// Writes the report.
pub fn run(args: Args) -> Result<()> {
    report(&args.dir)
}

/// min, median, max in milliseconds.
fn summary(nanos: &[Value]) -> Option<(f64, f64, f64)> {
    let mut ms: Vec<f64> = nanos
        .iter()
        .filter_map(Value::as_f64)
        .map(|n| n / 1e6)
        .collect();
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    Some((ms[0], ms[ms.len() / 2], ms[ms.len() - 1]))
}

type Key = (String, String, u64);
/// min, median, max (ms), run count, checksum.
type Summary = (f64, f64, f64, usize, f64);

fn load(out: &Path) -> Result<BTreeMap<Key, Summary>> {
    let mut table = BTreeMap::new();
    for file in ["rust.json", "rust-portable-sha.json", "js.json"] {
        let path = out.join(file);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let records: Vec<Value> =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for r in records {
            let (Some(runner), Some(kernel), Some(size), Some(nanos)) = (
                r["runner"].as_str(),
                r["kernel"].as_str(),
                r["size"].as_u64(),
                r["nanos"].as_array(),
            ) else {
                continue;
            };
            if let Some((min, median, max)) = summary(nanos) {
                let checksum = r["checksum"].as_f64().unwrap_or(f64::NAN);
                table.insert(
                    (runner.to_string(), kernel.to_string(), size),
                    (min, median, max, nanos.len(), checksum),
                );
            }
        }
    }
    Ok(table)
}

/// Columns of the main table, in order.
const COLUMNS: &[(&str, &str)] = &[
    ("native", "native"),
    ("wasm-guest", "WASM shipped, O3+SIMD (in guest)"),
    ("wasm-host", "WASM shipped (host call, copies)"),
    ("wasm-o3-guest", "WASM O3, no SIMD (in guest)"),
    ("wasm-size-guest", "WASM opt-level s (in guest)"),
    ("jco-guest", "jco/V8, shipped (in guest)"),
    ("jco-size-guest", "jco/V8, opt-level s (in guest)"),
    ("js-typed", "JS typed arrays"),
    ("js-array", "JS Array+comparator"),
];

/// Series of the chart.
const SERIES: &[(&str, &str, &str)] = &[
    ("native", "native", "#1f2937"),
    ("wasm-size-guest", "WASM (opt-level s)", "#6d28d9"),
    ("wasm-o3-guest", "WASM O3", "#8b5cf6"),
    ("wasm-guest", "WASM O3+SIMD (shipped)", "#c4b5fd"),
    ("js-typed", "JavaScript", "#d97706"),
];

/// The CPU's model name from `/proc/cpuinfo`, if it says.
pub(crate) fn cpu_model() -> Option<String> {
    fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    })
}

/// The commit (with `-dirty` when the tree has changes) and the UTC date.
pub(crate) fn provenance() -> (String, String) {
    let commit = output(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let dirty = output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
        .is_some_and(|s| !s.trim().is_empty());
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    (
        if dirty {
            format!("{commit}-dirty")
        } else {
            commit
        },
        date,
    )
}

fn environment() -> Value {
    let cpu = cpu_model().unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = output(Command::new("rustc").arg("--version")).unwrap_or_default();
    let node = output(Command::new("node").arg("--version")).unwrap_or_default();
    let kernel = output(Command::new("uname").arg("-sr")).unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": cores,
        "os": kernel.trim(),
        "rustc": rustc.trim(),
        "wasmtime": "48.0.8 (crate, Cranelift, default config)",
        "node": node.trim(),
        "jco": "1.35.0",
        "command": "cargo xtask bench",
        "commit": provenance().0,
        "date": provenance().1,
    })
}

fn report(out: &Path) -> Result<()> {
    let table = load(out)?;
    let env = environment();
    let mut cases: Vec<(String, u64)> = table
        .keys()
        .filter(|(runner, _, _)| runner == "native")
        .map(|(_, k, s)| (k.clone(), *s))
        .collect();
    cases.dedup();
    let order = |k: &str| {
        [
            "sort-i32",
            "sort-f64",
            "blur",
            "matmul",
            "sha256",
            "compute",
            "compute-libm",
            "statistics",
        ]
        .iter()
        .position(|x| *x == k)
        .unwrap_or(99)
    };
    cases.sort_by_key(|(k, s)| (order(k), *s));
    // Sorts of f64 and statistics also run at scaling sizes; their main row
    // is 10^6 values (or the only size, in a --quick run).
    let main_size = |k: &str| {
        let sizes: Vec<u64> = cases
            .iter()
            .filter(|(c, _)| c == k)
            .map(|(_, s)| *s)
            .collect();
        if sizes.contains(&1_000_000) {
            1_000_000
        } else {
            sizes.iter().copied().min().unwrap_or(0)
        }
    };
    let is_main = |k: &str, s: u64| match k {
        "sort-f64" | "statistics" => s == main_size(k),
        _ => true,
    };

    let cell = |runner: &str, k: &str, s: u64| {
        table
            .get(&(runner.to_string(), k.to_string(), s))
            .map(|(min, med, _, _, _)| format!("{med:.2} ({min:.2})"))
            .unwrap_or_else(|| "–".into())
    };
    let median = |runner: &str, k: &str, s: u64| {
        table
            .get(&(runner.to_string(), k.to_string(), s))
            .map(|v| v.1)
    };
    let ratio = |runner: &str, k: &str, s: u64| match (median(runner, k, s), median("native", k, s))
    {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    };

    let mut md = String::new();
    writeln!(md, "# Benchmark: native vs WASM vs JavaScript\n")?;
    writeln!(
        md,
        "Commit {}, {}. Machine: {} ({} cores), {}. Versions: {}, Wasmtime {}, Node {}, jco {}. Command: `{}`.\n",
        env["commit"].as_str().unwrap_or(""),
        env["date"].as_str().unwrap_or(""),
        env["cpu"].as_str().unwrap_or(""),
        env["cores"],
        env["os"].as_str().unwrap_or(""),
        env["rustc"].as_str().unwrap_or(""),
        env["wasmtime"].as_str().unwrap_or(""),
        env["node"].as_str().unwrap_or(""),
        env["jco"].as_str().unwrap_or(""),
        env["command"].as_str().unwrap_or("")
    )?;
    writeln!(
        md,
        "Each cell: median (min) in ms over the timed runs after warm-up. \"in guest\" is timed by the \
         component with its monotonic clock (no argument copies); \"host call\" times the exported \
         function from the host, copies in and out included.\n"
    )?;
    write!(md, "| kernel | size |")?;
    for (_, title) in COLUMNS {
        write!(md, " {title} |")?;
    }
    writeln!(
        md,
        " WASM shipped/native | WASM O3/native | WASM opt-level s/native | JS/native |"
    )?;
    writeln!(
        md,
        "|---|---:|{}---:|---:|---:|---:|",
        "---:|".repeat(COLUMNS.len())
    )?;
    for (k, s) in cases.iter().filter(|(k, s)| is_main(k, *s)) {
        write!(md, "| {k} | {s} |")?;
        for (runner, _) in COLUMNS {
            write!(md, " {} |", cell(runner, k, *s))?;
        }
        writeln!(
            md,
            " {} | {} | {} | {} |",
            ratio("wasm-guest", k, *s),
            ratio("wasm-o3-guest", k, *s),
            ratio("wasm-size-guest", k, *s),
            ratio("js-typed", k, *s)
        )?;
    }
    if let Some(p) = median("native-portable-sha", "sha256", 16 * 1024 * 1024) {
        let hw = median("native", "sha256", 16 * 1024 * 1024).unwrap_or(f64::NAN);
        writeln!(
            md,
            "\nSHA-256 natively: {hw:.2} ms with sha2's runtime-detected SHA-NI path, {p:.2} ms with \
             its portable code (`--features portable-sha`, the code WASM runs); WASM shipped/portable-native = {}.",
            median("wasm-guest", "sha256", 16 * 1024 * 1024)
                .map(|w| format!("{:.2}×", w / p))
                .unwrap_or_else(|| "–".into())
        )?;
    }
    if let Some(crypto) = median("js-node-crypto", "sha256", 16 * 1024 * 1024) {
        writeln!(
            md,
            "Node's `crypto` (OpenSSL, native code): {crypto:.2} ms."
        )?;
    }

    writeln!(md, "\n## Scaling (median ms)\n")?;
    writeln!(md, "| kernel | size | native | WASM shipped, O3+SIMD (in guest) | WASM opt-level s (in guest) | jco/V8, shipped (in guest) | JS typed arrays | WASM shipped/native | WASM opt-level s/native |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (k, s) in cases
        .iter()
        .filter(|(k, _)| k == "sort-f64" || k == "statistics")
    {
        let m = |r: &str| median(r, k, *s).map_or("–".into(), |v| format!("{v:.2}"));
        writeln!(
            md,
            "| {k} | {s} | {} | {} | {} | {} | {} | {} | {} |",
            m("native"),
            m("wasm-guest"),
            m("wasm-size-guest"),
            m("jco-guest"),
            m("js-typed"),
            ratio("wasm-guest", k, *s),
            ratio("wasm-size-guest", k, *s)
        )?;
    }

    if let Some(section) = crate::boundary::section(out)? {
        md.push_str(&section);
    }

    // Checksums: every runner of an exact kernel must agree with native.
    writeln!(md, "\n## Checksums\n")?;
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for ((runner, k, s), v) in table.iter().filter(|((r, _, _), _)| r != "native") {
        let exact = matches!(
            k.as_str(),
            "sort-i32" | "sort-f64" | "blur" | "matmul" | "sha256"
        );
        if let Some(native) = table.get(&("native".to_string(), k.clone(), *s)) {
            compared += 1;
            let ok = if exact {
                v.4 == native.4
            } else {
                (v.4 - native.4).abs() <= 1e-9 * native.4.abs().max(1.0)
            };
            if !ok {
                mismatches.push(format!("{runner} {k} {s}: {} vs native {}", v.4, native.4));
            }
        }
    }
    if compared == 0 {
        writeln!(
            md,
            "None: these results hold no native run to compare with (`--only kernels` writes one)."
        )?;
    } else if mismatches.is_empty() {
        writeln!(md, "All {compared} results agree with native's (exactly for sorts, blur, matmul and SHA-256; within 1e-9 relative for compute and statistics).")?;
    } else {
        writeln!(md, "Disagreements:\n")?;
        for m in &mismatches {
            writeln!(md, "- {m}")?;
        }
    }

    let records: Vec<Value> = table
        .iter()
        .map(|((runner, k, s), (min, med, max, runs, checksum))| {
            json!({
                "runner": runner, "kernel": k, "size": s, "runs": runs,
                "min_ms": min, "median_ms": med, "max_ms": max,
                "spread_pct": if *med > 0.0 { (max - min) / med * 100.0 } else { 0.0 },
                "checksum": checksum,
            })
        })
        .collect();
    fs::write(
        out.join("report.json"),
        serde_json::to_vec_pretty(&json!({"environment": env, "results": records}))?,
    )?;
    let chart_cases: Vec<(String, u64)> = cases
        .iter()
        .filter(|(k, s)| is_main(k, *s))
        .cloned()
        .collect();
    fs::write(out.join("chart.svg"), chart(&chart_cases, &median))?;
    fs::write(out.join("report.md"), &md)?;
    println!("{md}");
    eprintln!(
        "==> wrote {}: report.md, report.json, chart.svg",
        out.display()
    );
    if !mismatches.is_empty() {
        anyhow::bail!("{} checksum mismatches (see the report)", mismatches.len());
    }
    Ok(())
}

/// Grouped bars per kernel, log-scale milliseconds.
fn chart(cases: &[(String, u64)], median: &dyn Fn(&str, &str, u64) -> Option<f64>) -> String {
    let (w, h, left, top, bottom) = (960.0, 420.0, 70.0, 40.0, 90.0);
    let plot_h = h - top - bottom;
    let values: Vec<f64> = cases
        .iter()
        .flat_map(|(k, s)| SERIES.iter().filter_map(|(r, _, _)| median(r, k, *s)))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min)
        .max(1e-3)
        .log10()
        .floor();
    let hi = values
        .iter()
        .cloned()
        .fold(1e-3, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y = |v: f64| top + plot_h * (1.0 - (v.log10() - lo) / (hi - lo));
    let group = (w - left - 20.0) / cases.len().max(1) as f64;
    let bar = group * 0.8 / SERIES.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Median time per kernel (ms, log scale; lower is better)</text>\n"
    );
    let mut decade = lo;
    while decade <= hi {
        let yy = y(10f64.powf(decade));
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e7eb\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - 20.0,
            left - 6.0,
            yy + 4.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for (i, (k, s)) in cases.iter().enumerate() {
        let x0 = left + i as f64 * group + group * 0.1;
        for (j, (runner, _, color)) in SERIES.iter().enumerate() {
            if let Some(v) = median(runner, k, *s).filter(|v| *v > 0.0) {
                let yy = y(v);
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{runner} {k} {s}: {v:.3} ms</title></rect>",
                    x0 + j as f64 * bar,
                    bar * 0.92,
                    (top + plot_h - yy).max(0.5)
                );
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{k}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6b7280\">{s}</text>",
            x0 + group * 0.4,
            top + plot_h + 16.0,
            x0 + group * 0.4,
            top + plot_h + 30.0
        );
    }
    for (j, (_, label, color)) in SERIES.iter().enumerate() {
        let x = left + j as f64 * 130.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{label}</text>",
            h - 30.0,
            x + 16.0,
            h - 20.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the runners write it: three timed runs of 1 ms.
    fn record(runner: &str, kernel: &str, checksum: f64) -> Value {
        json!({"runner": runner, "kernel": kernel, "size": 1000,
               "nanos": [1e6, 1e6, 1e6], "checksum": checksum})
    }

    /// Writes `rust.json` (when given) and `js.json` into a fresh
    /// directory, runs the report, and returns its outcome and markdown.
    fn report_of(tag: &str, rust: Option<Vec<Value>>, js: Vec<Value>) -> (Result<()>, String) {
        let dir = vecproc_harness::temp_dir(tag);
        if let Some(rust) = rust {
            fs::write(dir.join("rust.json"), Value::from(rust).to_string()).unwrap();
        }
        fs::write(dir.join("js.json"), Value::from(js).to_string()).unwrap();
        let outcome = report(&dir);
        let md = fs::read_to_string(dir.join("report.md")).unwrap_or_default();
        let _ = fs::remove_dir_all(&dir);
        (outcome, md)
    }

    #[test]
    fn without_a_native_run_no_agreement_is_claimed() {
        let (outcome, md) = report_of(
            "report-none",
            None,
            vec![record("js-typed", "sort-f64", 5.0)],
        );
        outcome.unwrap();
        assert!(
            md.contains("None: these results hold no native run"),
            "{md}"
        );
        assert!(!md.contains("agree with native"), "{md}");
    }

    #[test]
    fn agreement_counts_the_results_compared() {
        let rust = vec![
            record("native", "sort-f64", 5.0),
            record("wasm-guest", "sort-f64", 5.0),
        ];
        let (outcome, md) = report_of(
            "report-agree",
            Some(rust),
            vec![record("js-typed", "sort-f64", 5.0)],
        );
        outcome.unwrap();
        assert!(md.contains("All 2 results agree with native's"), "{md}");
    }

    #[test]
    fn a_differing_exact_checksum_fails_the_report() {
        let rust = vec![
            record("native", "sort-f64", 5.0),
            record("wasm-guest", "sort-f64", 6.0),
        ];
        let (outcome, md) = report_of("report-differ", Some(rust), Vec::new());
        assert!(outcome.is_err());
        assert!(
            md.contains("wasm-guest sort-f64 1000: 6 vs native 5"),
            "{md}"
        );
    }
}
