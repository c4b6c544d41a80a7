//! The JSON body parser, `parse_values(BodyFormat::Json, _)`.
//!
//! For any bytes:
//! - it agrees with serde_json's own `Value` parser: it accepts exactly the
//!   documents that are an array of numbers, or an object whose one key is
//!   `values` holding such an array, with every number within the f64 range,
//!   and yields the same values bit for bit (the one difference: a repeated
//!   `values` key, which `Value` keeps the last of, is refused);
//! - what it accepts is finite, and rendering it with `values_json` then
//!   parsing again gives the same bits, bare or wrapped in `{"values": ...}`;
//! - what it refuses is a 400 with a body error code whose JSON rendering has
//!   the documented `{"error":{"code","message"}}` shape.

use serde_json::Value;
use vecproc_core::api::{parse_values, values_json, ApiError, BodyFormat, ErrorCode};

/// Checks the properties above for one input; panics on a violation.
pub fn check_input(data: &[u8]) {
    let parsed = parse_values(BodyFormat::Json, data);
    match (&parsed, reference(data)) {
        (Ok(values), Some((expected, _))) => assert_eq!(bits(values), bits(&expected)),
        (Ok(values), None) => panic!("accepted {values:?}, which serde_json's Value refuses"),
        (Err(e), None) => check_error(e),
        (Err(e), Some((_, is_object))) => {
            // Value keeps the last of repeated keys; the parser refuses them.
            assert!(
                is_object && e.code == ErrorCode::BadJson && e.message.contains("duplicate field"),
                "refused a valid document: {e:?}"
            );
            check_error(e);
        }
    }
    if let Ok(values) = parsed {
        assert!(values.iter().all(|x| x.is_finite()));
        let rendered = values_json(&values);
        let again = parse_values(BodyFormat::Json, &rendered).expect("rendered JSON parses");
        assert_eq!(bits(&again), bits(&values));
        let mut wrapped = b"{\"values\":".to_vec();
        wrapped.extend_from_slice(&rendered);
        wrapped.push(b'}');
        let again = parse_values(BodyFormat::Json, &wrapped).expect("wrapped JSON parses");
        assert_eq!(bits(&again), bits(&values));
    }
}

/// The values serde_json's `Value` finds in an accepted shape, and whether
/// the document was the object form.
fn reference(data: &[u8]) -> Option<(Vec<f64>, bool)> {
    let (array, is_object) = match serde_json::from_slice::<Value>(data).ok()? {
        Value::Array(array) => (array, false),
        Value::Object(mut map) if map.len() == 1 => match map.remove("values")? {
            Value::Array(array) => (array, true),
            _ => return None,
        },
        _ => return None,
    };
    let values = array
        .iter()
        .map(Value::as_f64)
        .collect::<Option<Vec<f64>>>()?;
    Some((values, is_object))
}

fn check_error(e: &ApiError) {
    assert_eq!(e.status(), 400);
    assert!(
        matches!(
            e.code,
            ErrorCode::BadJson | ErrorCode::NotANumber | ErrorCode::NonFinite
        ),
        "{e:?}"
    );
    let body: Value = serde_json::from_slice(&e.to_json()).expect("error body is JSON");
    let code = serde_json::to_value(e.code).unwrap();
    assert_eq!(body["error"]["code"], code);
    assert_eq!(body["error"]["message"].as_str(), Some(e.message.as_str()));
    assert_eq!(body.as_object().map(|o| o.len()), Some(1));
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|x| x.to_bits()).collect()
}
