//! The statistics (`Vector::statistics`, `quantile`, `stats_json`).
//!
//! The input is read as little-endian f64 words; the finite ones are the
//! values (the fuzzer reaches subnormals, ±0.0 and values near ±f64::MAX).
//! For any such values:
//! - nothing is NaN; every field is present exactly when documented (all but
//!   count and sum need a value, the sample ones two);
//! - mean, min, max, the quantiles and the population standard deviation are
//!   finite; the sample one is +inf only when its exact value is past
//!   f64::MAX (the seed `[MAX, MAX, -MAX]`: 1.15 × MAX);
//!   variances are non-negative (+inf only beyond the f64 range);
//! - min ≤ p25 ≤ median ≤ p75 ≤ p90 ≤ p99 ≤ max, and min ≤ mean ≤ max;
//!   min and max are the extremes; `quantile` stays in [min, max] and grows
//!   with q;
//! - the order-only statistics (count, min, max, quantiles) do not depend on
//!   the order of the input, and adding the values in several calls gives
//!   exactly the statistics of one call;
//! - `stats_json` is JSON with all fourteen fields and no NaN.

use vecproc_core::api::stats_json;
use vecproc_core::{SortOrder, Statistics, Vector};

/// Checks the properties above for one input; panics on a violation.
pub fn check_input(data: &[u8]) {
    let values: Vec<f64> = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .filter(|x| x.is_finite())
        .collect();
    let mut vector = Vector::new();
    vector
        .add_values(&values)
        .expect("finite values are stored");
    let s = vector.statistics();
    check(&values, &s);

    // Quantiles at q taken from the input's trailing bytes, in [0, 1].
    let q = |byte: u8| f64::from(byte) / 255.0;
    let (q1, q2) = match data {
        [.., a, b] => (q(*a).min(q(*b)), q(*a).max(q(*b))),
        _ => (0.0, 1.0),
    };
    let at = |q| vector.quantile(q).expect("q in [0, 1] is valid");
    match (at(q1), at(q2), s.min, s.max) {
        (Some(a), Some(b), Some(min), Some(max)) => {
            assert!(min <= a && a <= b && b <= max, "{q1}: {a}, {q2}: {b}");
        }
        (None, None, None, None) => assert!(values.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(vector.quantile(f64::NAN).is_err() && vector.quantile(1.5).is_err());

    // Order-only statistics are the same for the values sorted descending.
    let mut reordered = Vector::new();
    reordered
        .add_values(vector.sorted(SortOrder::Descending))
        .unwrap();
    let r = reordered.statistics();
    let order_only = |s: &Statistics| (s.count, s.min, s.max, s.median, s.p25, s.p75, s.p90, s.p99);
    assert_eq!(order_only(&r), order_only(&s));
    check(&values, &r);

    // The same values added in two calls: the very same statistics.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b))
        .min(values.len());
    let mut twice = Vector::new();
    twice.add_values(&values[..split]).unwrap();
    twice.add_values(&values[split..]).unwrap();
    assert_eq!(twice.statistics(), s);
}

fn check(values: &[f64], s: &Statistics) {
    let n = values.len();
    assert_eq!(s.count, n as u64);
    if n == 0 {
        assert_eq!(*s, Statistics::EMPTY);
        return;
    }
    let all = [
        s.mean, s.min, s.max, s.variance, s.stddev, s.median, s.p25, s.p75, s.p90, s.p99,
    ];
    assert!(all.iter().all(Option::is_some), "{s:?}");
    assert_eq!(s.sample_variance.is_some(), n >= 2);
    assert_eq!(s.sample_stddev.is_some(), n >= 2);
    assert!(!s.sum.is_nan());
    let get = |x: Option<f64>| x.unwrap();
    for x in [
        s.mean, s.min, s.max, s.stddev, s.median, s.p25, s.p75, s.p90, s.p99,
    ] {
        assert!(get(x).is_finite(), "{s:?}");
    }
    for v in [s.variance, s.sample_variance].into_iter().flatten() {
        assert!(v >= 0.0, "{s:?}");
    }
    if let Some(sd) = s.sample_stddev {
        // √(n/(n−1)) times the population one, which is at most
        // (max − min)/2: beyond f64::MAX (so +inf) only near the range's ends.
        let n = values.len() as f64;
        let beyond = get(s.stddev) * (n / (n - 1.0)).sqrt() > f64::MAX * (1.0 - 1e-12);
        assert!(sd >= 0.0 && (sd.is_finite() || beyond), "{s:?}");
    }
    assert!(get(s.stddev) >= 0.0);
    let (min, max) = (get(s.min), get(s.max));
    assert_eq!(min, values.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(
        max,
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    let chain = [
        min,
        get(s.p25),
        get(s.median),
        get(s.p75),
        get(s.p90),
        get(s.p99),
        max,
    ];
    assert!(chain.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
    assert!(min <= get(s.mean) && get(s.mean) <= max, "{s:?}");
    if min == max {
        assert_eq!((s.mean, s.variance), (Some(min), Some(0.0)), "{s:?}");
    }

    let json: serde_json::Value = serde_json::from_slice(&stats_json(s)).expect("stats are JSON");
    assert_eq!(json.as_object().map(|o| o.len()), Some(14));
    assert_eq!(json["count"], n as u64);
}
