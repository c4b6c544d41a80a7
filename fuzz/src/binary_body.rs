//! The binary body parser, `parse_values(BodyFormat::Binary, _)`.
//!
//! For any bytes:
//! - a length that is not a multiple of 8 is 400 `bad_binary_length`;
//! - otherwise the body is accepted exactly when every 8-byte word is a
//!   finite little-endian f64, and refusal is 400 `non_finite` naming the
//!   index of the first NaN or infinity;
//! - an accepted body renders back to the same bytes (`values_binary`), and
//!   through JSON (`values_json`, then the JSON parser) to the same bits;
//! - the vector accepts the values and `/sort`'s binary answer is the same
//!   bytes reordered: ascending by value, a permutation of the input words.

use vecproc_core::api::{parse_values, values_binary, values_json, BodyFormat, ErrorCode};
use vecproc_core::{SortOrder, Vector};

/// Checks the properties above for one input; panics on a violation.
pub fn check_input(data: &[u8]) {
    let parsed = parse_values(BodyFormat::Binary, data);
    if !data.len().is_multiple_of(8) {
        let e = parsed.expect_err("a length that is not a multiple of 8 is refused");
        assert_eq!((e.status(), e.code), (400, ErrorCode::BadBinaryLength));
        assert!(e.message.contains(&data.len().to_string()), "{}", e.message);
        return;
    }
    let words: Vec<f64> = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    match (parsed, words.iter().position(|x| !x.is_finite())) {
        (Err(e), Some(i)) => {
            assert_eq!((e.status(), e.code), (400, ErrorCode::NonFinite));
            assert!(e.message.contains(&format!("index {i} ")), "{}", e.message);
        }
        (Ok(values), None) => {
            assert_eq!(values_binary(&values), data);
            let through_json = parse_values(BodyFormat::Json, &values_json(&values))
                .expect("finite values render as JSON that parses");
            assert_eq!(bits(&through_json), bits(&values));

            let mut vector = Vector::new();
            vector
                .add_values(&values)
                .expect("finite values are stored");
            let sorted = values_binary(vector.sorted(SortOrder::Ascending));
            assert_eq!(sorted.len(), data.len());
            let sorted_words: Vec<f64> = sorted
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert!(sorted_words.windows(2).all(|w| w[0] <= w[1]));
            let mut a = bits(&sorted_words);
            let mut b = bits(&values);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "sorting is a permutation");
        }
        (parsed, first_bad) => {
            panic!("{parsed:?} for a body whose first bad word is {first_bad:?}")
        }
    }
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|x| x.to_bits()).collect()
}
