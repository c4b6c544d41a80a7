//! `vecproc`: statistics (or a sorted copy) of numbers read from standard
//! input or a file, printed as the HTTP API's JSON.
//!
//! Exit codes: 0 success, 1 bad input (the message names the problem),
//! 2 bad arguments or an unreadable file. Built natively and for
//! `wasm32-wasip1` (`target/wasm/vecproc.wasm`) from the same source.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use vecproc_cli::{parse, render, Format, Output};
use vecproc_core::SortOrder;

/// Statistics of numbers from standard input or FILE, as the JSON of the
/// HTTP API's `POST /stats`; with `--sort`, the values sorted as a JSON array.
#[derive(Parser)]
// `bin_name`: usage lines say `vecproc` whatever argv[0] a runtime passes
// (`vecproc.wasm` under wasmtime, `main` under @wasmer/sdk).
#[command(name = "vecproc", bin_name = "vecproc", version)]
struct Args {
    /// Read from FILE instead of standard input (`-` is standard input).
    file: Option<PathBuf>,
    /// How the input is encoded: a JSON array or {"values": [...]}, one
    /// number per line, or little-endian f64.
    #[arg(long, value_enum, default_value_t = InputFormat::Json)]
    format: InputFormat,
    /// Print the values sorted (ascending when ORDER is left out) instead of
    /// statistics.
    #[arg(long, value_enum, value_name = "ORDER", num_args = 0..=1, default_missing_value = "asc")]
    sort: Option<Order>,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    /// A JSON array of numbers, or {"values": [...]}.
    Json,
    /// One number per line.
    Lines,
    /// Little-endian f64 values back to back.
    F64le,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// Bad input.
const EXIT_INPUT: u8 = 1;
/// Bad arguments (clap also exits 2 on a usage error).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let (source, input) = match read_input(args.file.as_deref()) {
        Ok(read) => read,
        Err(message) => return fail(EXIT_USAGE, &message),
    };
    let format = match args.format {
        InputFormat::Json => Format::Json,
        InputFormat::Lines => Format::Lines,
        InputFormat::F64le => Format::F64Le,
    };
    let values = match parse(format, &input) {
        Ok(values) => values,
        Err(e) => return fail(EXIT_INPUT, &format!("{source}: {e}")),
    };
    drop(input);
    let output = match args.sort {
        None => Output::Statistics,
        Some(Order::Asc) => Output::Sorted(SortOrder::Ascending),
        Some(Order::Desc) => Output::Sorted(SortOrder::Descending),
    };
    let bytes = render(&values, output);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(EXIT_INPUT, &format!("writing standard output: {e}")),
    }
}

/// The whole input and a name for it in messages.
fn read_input(file: Option<&std::path::Path>) -> Result<(String, Vec<u8>), String> {
    match file {
        None => read_stdin(),
        Some(path) if path.as_os_str() == "-" => read_stdin(),
        Some(path) => std::fs::read(path)
            .map(|bytes| (path.display().to_string(), bytes))
            .map_err(|e| format!("cannot read {}: {}", path.display(), io_message(&e))),
    }
}

fn read_stdin() -> Result<(String, Vec<u8>), String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map(|_| ("stdin".to_string(), bytes))
        .map_err(|e| format!("cannot read standard input: {}", io_message(&e)))
}

/// An I/O error's message without the OS error number, which differs
/// between native builds and WASI (`No such file or directory (os error 2)`
/// natively is `... (os error 44)` under WASI).
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("vecproc: error: {message}");
    ExitCode::from(code)
}
