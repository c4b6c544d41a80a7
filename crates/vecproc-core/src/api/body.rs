//! Request bodies: which format a `content-type` names, the size limit, and
//! parsing JSON or little-endian f64 bytes into finite values.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{ApiError, ErrorCode};

/// Default request-body limit: 64 MiB, room for 1,000,000 values as JSON
/// with full precision (about 20 bytes each).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON array of numbers, or `{"values": [...]}`.
    Json,
    /// Little-endian f64 values back to back.
    Binary,
}

impl BodyFormat {
    /// The format a `content-type` header names. No header means JSON;
    /// `application/json`, any `+json` type and `text/json` are JSON;
    /// `application/octet-stream` is binary; anything else is 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = content_type else {
            return Ok(BodyFormat::Json);
        };
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/json" | "text/json" => Ok(BodyFormat::Json),
            "application/octet-stream" => Ok(BodyFormat::Binary),
            t if t.starts_with("application/") && t.ends_with("+json") => Ok(BodyFormat::Json),
            _ => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "content-type {raw:?} is not supported; send application/json or application/octet-stream"
                ),
            )),
        }
    }
}

/// Whether an `Accept` header asks for binary f64 output (it names
/// `application/octet-stream` and not JSON first).
pub fn wants_binary(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    for item in accept.split(',') {
        let essence = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/octet-stream" => return true,
            "application/json" | "*/*" | "application/*" => return false,
            _ => {}
        }
    }
    false
}

/// 413 before reading anything when a declared `content-length` is over `limit`.
pub fn check_declared_length(content_length: Option<u64>, limit: u64) -> Result<(), ApiError> {
    match content_length {
        Some(len) if len > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// The 413 error for a body over `limit` bytes.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// Parses a whole body into finite values.
pub fn parse_values(format: BodyFormat, body: &[u8]) -> Result<Vec<f64>, ApiError> {
    match format {
        BodyFormat::Binary => parse_binary(body),
        BodyFormat::Json => parse_json(body),
    }
}

fn parse_binary(body: &[u8]) -> Result<Vec<f64>, ApiError> {
    if !body.len().is_multiple_of(8) {
        return Err(ApiError::new(
            ErrorCode::BadBinaryLength,
            format!(
                "binary body is {} bytes, not a multiple of 8 (little-endian f64 values)",
                body.len()
            ),
        ));
    }
    let values: Vec<f64> = body
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        return Err(ApiError::new(
            ErrorCode::NonFinite,
            format!("value at index {i} is {}, not a finite number", values[i]),
        ));
    }
    Ok(values)
}

fn parse_json(body: &[u8]) -> Result<Vec<f64>, ApiError> {
    // Set by the element visitor when an array element is not a number, so
    // the code never depends on an error's text (an object key such as
    // "expected a number" must not turn a shape error into `not_a_number`).
    let not_a_number = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Document {
        not_a_number: &not_a_number,
        capacity: values_at_most(body),
    }
    .deserialize(&mut de)
    .and_then(|values| de.end().map(|()| values));
    parsed.map_err(|e| {
        let code = if not_a_number.get() {
            ErrorCode::NotANumber
        } else if out_of_range(&e) {
            ErrorCode::NonFinite
        } else {
            ErrorCode::BadJson
        };
        let message = match code {
            ErrorCode::NonFinite => format!("{e} (values must be finite f64)"),
            _ => e.to_string(),
        };
        ApiError::new(code, message)
    })
}

/// An upper bound on the values a JSON body can hold, to size the vector
/// once: elements are separated by commas, and each takes at least two
/// bytes with its comma. A vector grown by doubling instead peaks at 1.5×
/// its final size while it moves (the 64 MiB body of 31 million values
/// needed 384 MiB and trapped); this bound costs one pass over the bytes
/// and never allocates more than a valid body of the same size needs.
fn values_at_most(body: &[u8]) -> usize {
    let commas = body.iter().filter(|&&b| b == b',').count();
    commas.saturating_add(1).min(body.len() / 2 + 1)
}

/// Whether serde_json refused a number beyond the f64 range. serde_json
/// exposes no typed code for it: it is a syntax error whose text begins
/// with its own fixed words, which no part of the input can produce (the
/// errors our visitors build begin with "invalid type", "unknown field",
/// "duplicate field" or "missing field").
fn out_of_range(e: &serde_json::Error) -> bool {
    e.classify() == serde_json::error::Category::Syntax
        && e.to_string().starts_with("number out of range")
}

const SHAPE: &str = "a JSON array of numbers or an object {\"values\": [numbers]}";

/// The whole document: an array of numbers, or `{"values": [...]}`.
#[derive(Clone, Copy)]
struct Document<'a> {
    not_a_number: &'a Cell<bool>,
    /// How many values to make room for at once.
    capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Vec<f64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SHAPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<f64>, A::Error> {
        Numbers {
            not_a_number: self.not_a_number,
            capacity: self.capacity,
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<f64>, A::Error> {
        let mut values = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "values" {
                return Err(de::Error::unknown_field(&key, &["values"]));
            }
            if values.is_some() {
                return Err(de::Error::duplicate_field("values"));
            }
            values = Some(map.next_value_seed(Numbers {
                not_a_number: self.not_a_number,
                capacity: self.capacity,
            })?);
        }
        values.ok_or_else(|| de::Error::missing_field("values"))
    }
}

/// A JSON array whose elements must all be numbers.
#[derive(Clone, Copy)]
struct Numbers<'a> {
    not_a_number: &'a Cell<bool>,
    capacity: usize,
}

impl<'de> DeserializeSeed<'de> for Numbers<'_> {
    type Value = Vec<f64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f64>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Numbers<'_> {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut out = Vec::with_capacity(self.capacity);
        let element = Number {
            not_a_number: self.not_a_number,
        };
        while let Some(x) = seq.next_element_seed(element)? {
            out.push(x);
        }
        Ok(out)
    }
}

/// One element: any JSON number, as f64; anything else is `not_a_number`.
#[derive(Clone, Copy)]
struct Number<'a> {
    not_a_number: &'a Cell<bool>,
}

impl Number<'_> {
    fn refuse<E: de::Error>(self, unexpected: de::Unexpected<'_>) -> E {
        self.not_a_number.set(true);
        de::Error::invalid_type(unexpected, &self)
    }
}

impl<'de> DeserializeSeed<'de> for Number<'_> {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Number<'_> {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<f64, E> {
        Err(self.refuse(de::Unexpected::Bool(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        Err(self.refuse(de::Unexpected::Str(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Err(self.refuse(de::Unexpected::Unit))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<f64, A::Error> {
        Err(self.refuse(de::Unexpected::Seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<f64, A::Error> {
        Err(self.refuse(de::Unexpected::Map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Result<Vec<f64>, ApiError> {
        parse_values(BodyFormat::Json, s.as_bytes())
    }

    fn json_code(s: &str) -> ErrorCode {
        json(s).unwrap_err().code
    }

    #[test]
    fn the_vector_is_sized_once_from_the_body() {
        assert_eq!(values_at_most(b"[1,2,3]"), 3);
        assert_eq!(values_at_most(b"[]"), 1);
        assert_eq!(values_at_most(b""), 1);
        // Commas that are not separators cannot push it past what a valid
        // body of the same length could hold.
        let strings = format!("[\"{}\"]", ",".repeat(1000));
        assert_eq!(values_at_most(strings.as_bytes()), strings.len() / 2 + 1);
        let zeros = format!("[{}0]", "0,".repeat(999));
        assert_eq!(values_at_most(zeros.as_bytes()), 1000);
        let v = json(&zeros).unwrap();
        assert_eq!((v.len(), v.capacity()), (1000, 1000));
    }

    #[test]
    fn json_shapes() {
        assert_eq!(json("[1, 2.5, -3e2]").unwrap(), vec![1.0, 2.5, -300.0]);
        assert_eq!(json(" {\"values\": [4]} ").unwrap(), vec![4.0]);
        assert_eq!(json("[]").unwrap(), Vec::<f64>::new());
        assert_eq!(json("{\"values\": []}").unwrap(), Vec::<f64>::new());
        assert_eq!(
            json("[18446744073709551615]").unwrap(),
            vec![18446744073709551615.0]
        );
    }

    #[test]
    fn json_parses_shortest_round_trip_exactly() {
        let x = 0.1 + 0.2;
        assert_eq!(json(&format!("[{x}]")).unwrap(), vec![x]);
        assert_eq!(
            json("[2.2250738585072014e-308]").unwrap(),
            vec![f64::MIN_POSITIVE]
        );
    }

    #[test]
    fn json_errors() {
        assert_eq!(json_code("[1, 2"), ErrorCode::BadJson);
        assert_eq!(json_code(""), ErrorCode::BadJson);
        assert_eq!(json_code("[1] x"), ErrorCode::BadJson);
        assert_eq!(json_code("{\"vals\": [1]}"), ErrorCode::BadJson);
        assert_eq!(json_code("{}"), ErrorCode::BadJson);
        assert_eq!(
            json_code("{\"values\": [1], \"values\": [2]}"),
            ErrorCode::BadJson
        );
        assert_eq!(json_code("42"), ErrorCode::BadJson);
        assert_eq!(json_code("[1, \"2\"]"), ErrorCode::NotANumber);
        assert_eq!(json_code("[null]"), ErrorCode::NotANumber);
        assert_eq!(json_code("[[1]]"), ErrorCode::NotANumber);
        assert_eq!(json_code("{\"values\": [true]}"), ErrorCode::NotANumber);
        assert_eq!(json_code("[1e400]"), ErrorCode::NonFinite);
        assert_eq!(json_code("[NaN]"), ErrorCode::BadJson);
        // The code comes from what failed, not from the error's text: keys
        // that spell serde_json's words stay shape errors.
        assert_eq!(
            json_code("{\"expected a number\": [1]}"),
            ErrorCode::BadJson
        );
        assert_eq!(
            json_code("{\"number out of range\": [1]}"),
            ErrorCode::BadJson
        );
        assert_eq!(
            json_code("[\"number out of range\"]"),
            ErrorCode::NotANumber
        );
        assert_eq!(json_code("{\"values\": {\"a\": 1}}"), ErrorCode::BadJson);
        assert_eq!(json_code("[1, {}]"), ErrorCode::NotANumber);
        let e = json("[1, \"2\"]").unwrap_err();
        assert!(e.message.contains("expected a number"), "{}", e.message);
        assert!(e.message.contains("column"), "{}", e.message);
    }

    /// The edge of the JSON range, as the OpenAPI contract states it: a
    /// number is accepted exactly when it rounds to a finite f64, that is
    /// when |x| < 2^1024 − 2^970 (the midpoint between f64::MAX and 2^1024,
    /// a tie that rounds to even, i.e. to infinity). Found by schemathesis,
    /// which sent f64::MAX's decimal digits plus one as an integer when the
    /// schema's bound was f64::MAX itself.
    #[test]
    fn json_range_is_round_to_nearest_f64() {
        const MIDPOINT: &str = concat!(
            "17976931348623158079372897140530341507993413271003782693617377898044496829276475",
            "09466490179775872070963302864166928879109465555478519404026306574886715058206819",
            "08902000708383676273854845817711531764475730270069855571366959622842914819860834",
            "936475292719074168444365510704342711559699508093042880177904174497792",
        );
        assert_eq!(MIDPOINT.len(), 309);
        let below = format!("{}1", &MIDPOINT[..308]);
        let max_plus_one = format!("17976931348623157{}1", "0".repeat(291));
        assert_eq!(max_plus_one.len(), 309);
        for (sign, max) in [("", f64::MAX), ("-", -f64::MAX)] {
            for accepted in [&below, &max_plus_one, "1.7976931348623158e308"] {
                assert_eq!(json(&format!("[{sign}{accepted}]")).unwrap(), vec![max]);
            }
            for refused in [
                MIDPOINT,
                &format!("{MIDPOINT}.0"),
                "1.797693134862315808e308",
            ] {
                let code = json_code(&format!("[{sign}{refused}]"));
                assert_eq!(code, ErrorCode::NonFinite, "{sign}{refused}");
            }
        }
    }

    #[test]
    fn binary() {
        let bytes: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            parse_values(BodyFormat::Binary, &bytes).unwrap(),
            vec![1.5, -2.0]
        );
        assert_eq!(
            parse_values(BodyFormat::Binary, &[]).unwrap(),
            Vec::<f64>::new()
        );
        let e = parse_values(BodyFormat::Binary, &bytes[..7]).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadBinaryLength);
        let nan: Vec<u8> = [0.0, f64::NAN]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let e = parse_values(BodyFormat::Binary, &nan).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFinite);
        assert!(e.message.contains("index 1"));
    }

    #[test]
    fn content_types() {
        use BodyFormat::*;
        assert_eq!(BodyFormat::from_content_type(None), Ok(Json));
        assert_eq!(
            BodyFormat::from_content_type(Some("application/json; charset=utf-8")),
            Ok(Json)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("Application/JSON")),
            Ok(Json)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/vnd.api+json")),
            Ok(Json)
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/octet-stream")),
            Ok(Binary)
        );
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let e = BodyFormat::from_content_type(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 415, "{bad}");
        }
    }

    #[test]
    fn accept() {
        assert!(!wants_binary(None));
        assert!(wants_binary(Some("application/octet-stream")));
        assert!(!wants_binary(Some(
            "application/json, application/octet-stream"
        )));
        assert!(wants_binary(Some(
            "text/html, application/octet-stream;q=0.9"
        )));
        assert!(!wants_binary(Some("*/*")));
    }

    #[test]
    fn declared_length() {
        assert!(check_declared_length(None, 10).is_ok());
        assert!(check_declared_length(Some(10), 10).is_ok());
        assert_eq!(
            check_declared_length(Some(11), 10).unwrap_err().status(),
            413
        );
    }
}
