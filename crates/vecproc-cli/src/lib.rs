//! The `vecproc` command's logic: turning input bytes into values and values
//! into the bytes the command prints. `main.rs` only handles arguments, files
//! and exit codes.
//!
//! JSON and little-endian f64 input go through [`vecproc_core::api`]'s body
//! parser, and output through its renderers, so the command accepts exactly
//! what `POST /stats` accepts and prints exactly the body the HTTP API answers
//! with (followed by a newline).

use std::fmt;

use vecproc_core::api::{self, BodyFormat};
use vecproc_core::{SortOrder, Vector};

/// How the input is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of numbers, or `{"values": [...]}` (the HTTP API's JSON body).
    Json,
    /// One number per line; blank lines are skipped.
    Lines,
    /// Little-endian f64 values back to back (the HTTP API's binary body).
    F64Le,
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The statistics object of `POST /stats`.
    Statistics,
    /// The values sorted, as the JSON array of `POST /sort`.
    Sorted(SortOrder),
}

/// Input the command refuses, with a message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The API's error code for the same problem (`bad_json`, `not_a_number`, ...).
    pub code: String,
    /// What is wrong and where.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for InputError {}

impl From<api::ApiError> for InputError {
    fn from(e: api::ApiError) -> Self {
        let code = serde_json::to_value(e.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", e.code));
        InputError {
            code,
            message: e.message,
        }
    }
}

/// Parses the whole input into finite values.
pub fn parse(format: Format, input: &[u8]) -> Result<Vec<f64>, InputError> {
    match format {
        Format::Json => Ok(api::parse_values(BodyFormat::Json, input)?),
        Format::F64Le => Ok(api::parse_values(BodyFormat::Binary, input)?),
        Format::Lines => parse_lines(input),
    }
}

/// One number per line (Rust's float syntax, surrounding whitespace
/// ignored); NaN, infinities and numbers beyond the f64 range are refused.
fn parse_lines(input: &[u8]) -> Result<Vec<f64>, InputError> {
    let text = std::str::from_utf8(input).map_err(|e| InputError {
        code: "not_a_number".into(),
        message: format!("input is not UTF-8 text (byte {})", e.valid_up_to()),
    })?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let x: f64 = line.parse().map_err(|_| InputError {
            code: "not_a_number".into(),
            message: format!("line {}: {line:?} is not a number", i + 1),
        })?;
        if !x.is_finite() {
            return Err(InputError {
                code: "non_finite".into(),
                message: format!(
                    "line {}: {line:?} is not a finite number (values must be finite f64)",
                    i + 1
                ),
            });
        }
        values.push(x);
    }
    Ok(values)
}

/// The bytes to print for `values`: the HTTP API's answer body and a newline.
pub fn render(values: &[f64], output: Output) -> Vec<u8> {
    let mut vector = Vector::new();
    vector
        .add_values(values)
        .expect("parse() only returns finite values");
    let mut out = match output {
        Output::Statistics => api::stats_json(&vector.statistics()),
        Output::Sorted(order) => api::values_json(vector.sorted(order)),
    };
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            parse(Format::Lines, b"4\n 1.5 \n\n-2e1\r\n").unwrap(),
            vec![4.0, 1.5, -20.0]
        );
        assert_eq!(parse(Format::Lines, b"").unwrap(), Vec::<f64>::new());
        let e = parse(Format::Lines, b"1\ntwo\n").unwrap_err();
        assert_eq!(e.code, "not_a_number");
        assert_eq!(e.message, "line 2: \"two\" is not a number");
        for bad in ["NaN", "inf", "-infinity", "1e400"] {
            let e = parse(Format::Lines, bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, "non_finite", "{bad}");
        }
        assert_eq!(
            parse(Format::Lines, b"\xff").unwrap_err().code,
            "not_a_number"
        );
    }

    #[test]
    fn json_and_binary_use_the_api_parser() {
        assert_eq!(
            parse(Format::Json, br#"{"values":[2,1]}"#).unwrap(),
            vec![2.0, 1.0]
        );
        assert_eq!(
            parse(Format::Json, b"[1,\"a\"]").unwrap_err().code,
            "not_a_number"
        );
        assert_eq!(
            parse(Format::Json, b"[1e999]").unwrap_err().code,
            "non_finite"
        );
        assert_eq!(parse(Format::Json, b"").unwrap_err().code, "bad_json");
        assert_eq!(
            parse(Format::F64Le, &[0; 7]).unwrap_err().code,
            "bad_binary_length"
        );
        let bytes: Vec<u8> = [2.5f64, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(parse(Format::F64Le, &bytes).unwrap(), vec![2.5, 0.5]);
    }

    #[test]
    fn renders_the_api_bodies() {
        assert_eq!(
            render(
                &[3.0, 1.5, -2.0, 8.0],
                Output::Sorted(SortOrder::Descending)
            ),
            b"[8.0,3.0,1.5,-2.0]\n"
        );
        let stats = render(&[4.0, 1.0, 3.0, 2.0], Output::Statistics);
        assert!(stats.starts_with(br#"{"count":4,"sum":10.0,"mean":2.5,"#));
        assert!(stats.ends_with(b"}\n"));
        assert_eq!(
            render(&[], Output::Statistics),
            [
                api::stats_json(&vecproc_core::Statistics::EMPTY),
                b"\n".to_vec()
            ]
            .concat()
        );
    }
}
