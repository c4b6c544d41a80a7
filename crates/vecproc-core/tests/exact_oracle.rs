//! Sums, means and variances held to an exact oracle, not to a naive formula
//! with a tolerance that hides errors.
//!
//! Every input here is a dyadic rational `m / 2^D` with an integer `m`, so
//! the exact sum and the exact variance are rationals computed in `i128`
//! without any rounding: Σm, and n·Σm² − (Σm)² over n²·2^2D. The oracle then
//! rounds once or twice into f64; the library must land within two units in
//! the last place of it. The inputs are the ones that break naive methods:
//! a large common offset with tiny deviations (the textbook failure of
//! Σx² − (Σx)²/n), sums that cancel to almost nothing, and values near the
//! f64 range (for the sum, which is exact there too).

use proptest::prelude::*;
use vecproc_core::{SortOrder, Vector};

/// Distance in units in the last place between two finite f64s of the same
/// sign (or zero).
fn ulps(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    assert!(a.is_finite() && b.is_finite(), "{a} vs {b}");
    // The ordered integer line of f64 bit patterns: negative values mirrored.
    let line = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 {
            i64::MIN - bits
        } else {
            bits
        }
    };
    line(a).abs_diff(line(b))
}

/// `x · 2^D` as an exact integer, for inputs generated to make it one.
fn numerator(x: f64, d: i32) -> i128 {
    let scaled = x * 2f64.powi(d);
    assert!(
        scaled.fract() == 0.0 && scaled.abs() < 2f64.powi(120),
        "{x}"
    );
    scaled as i128
}

/// Exact Σx rounded once to f64.
fn exact_sum(values: &[f64], d: i32) -> f64 {
    let total: i128 = values.iter().map(|&x| numerator(x, d)).sum();
    total as f64 * 2f64.powi(-d)
}

/// Exact population variance, rounded at most twice: n·Σm² − (Σm)² is
/// exact in `i128`, then divided by n² and scaled by 2^-2D.
fn exact_variance(values: &[f64], d: i32) -> f64 {
    let n = values.len() as i128;
    let ms: Vec<i128> = values.iter().map(|&x| numerator(x, d)).collect();
    let s: i128 = ms.iter().sum();
    let q: i128 = ms.iter().map(|m| m * m).sum();
    let num = n * q - s * s;
    assert!(num >= 0);
    num as f64 / (n * n) as f64 * 2f64.powi(-2 * d)
}

/// Values `offset + k·2^-20` with |k| < 2^29: x·2^20 is an integer below
/// 2^50, so its square and the sums of squares fit in `i128`.
fn offset_values() -> impl Strategy<Value = Vec<f64>> {
    let offsets = prop_oneof![
        Just(0.0),
        Just(2f64.powi(29)),
        Just(-3.0 * 2f64.powi(27)),
        (-(1i64 << 29)..(1i64 << 29)).prop_map(|k| k as f64),
    ];
    let spreads = prop_oneof![Just(0u32), Just(8), Just(20), Just(29)];
    (offsets, spreads, 2usize..128).prop_flat_map(|(offset, bits, n)| {
        let k = if bits == 0 {
            (0i64..1).boxed()
        } else {
            (-(1i64 << bits)..(1i64 << bits)).boxed()
        };
        prop::collection::vec(k, n).prop_map(move |ks| {
            ks.into_iter()
                .map(|k| offset + k as f64 * 2f64.powi(-20))
                .collect()
        })
    })
}

/// Values that cancel: pairs x, −x with small leftovers, shuffled by the
/// generator's order, far apart in magnitude (2^-60 to 2^52).
fn cancelling_values() -> impl Strategy<Value = Vec<f64>> {
    let big = (-60i32..0, 1i64..(1 << 52)).prop_map(|(e, k)| k as f64 * 2f64.powi(e));
    (
        prop::collection::vec(big, 1..60),
        prop::collection::vec(-(1i64 << 20)..(1 << 20), 0..8),
    )
        .prop_map(|(bigs, small)| {
            let mut out = Vec::new();
            for (i, b) in bigs.iter().enumerate() {
                out.push(*b);
                if i % 2 == 0 {
                    out.push(-*b);
                }
            }
            out.extend(small.iter().map(|&k| k as f64 * 2f64.powi(-60)));
            let mid = out.len() / 2;
            out.rotate_left(mid);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn sum_and_mean_within_two_ulps_of_exact(values in offset_values()) {
        let mut v = Vector::new();
        v.add_values(&values).unwrap();
        let s = v.statistics();
        let exact = exact_sum(&values, 20);
        prop_assert!(ulps(s.sum, exact) <= 2, "sum {} vs exact {exact}", s.sum);
        let n = values.len() as f64;
        let mean = s.mean.unwrap();
        prop_assert!(ulps(mean, exact / n) <= 2, "mean {mean} vs exact {}", exact / n);
    }

    #[test]
    fn variance_within_two_ulps_of_exact(values in offset_values()) {
        let mut v = Vector::new();
        v.add_values(&values).unwrap();
        let s = v.statistics();
        let exact = exact_variance(&values, 20);
        let got = s.variance.unwrap();
        if exact == 0.0 {
            prop_assert_eq!(got, 0.0);
        } else {
            prop_assert!(ulps(got, exact) <= 2, "variance {got} vs exact {exact}");
            let n = values.len() as f64;
            let sample = s.sample_variance.unwrap();
            let exact_sample = exact * n / (n - 1.0);
            prop_assert!(ulps(sample, exact_sample) <= 3, "sample variance {sample} vs {exact_sample}");
        }
    }

    #[test]
    fn cancelling_sums_within_two_ulps_of_exact(values in cancelling_values()) {
        let mut v = Vector::new();
        v.add_values(&values).unwrap();
        let exact = exact_sum(&values, 60);
        let got = v.statistics().sum;
        prop_assert!(ulps(got, exact) <= 2, "sum {got} vs exact {exact}");
    }
}

/// Near the top of the range the exact sum is still found: partial sums
/// that overflow are redone at a smaller scale.
#[test]
fn sums_near_the_range_limit_are_exact() {
    let big = f64::MAX / 4.0;
    for (values, exact) in [
        (vec![big, big, big, -big, -big], big),
        (vec![f64::MAX, f64::MAX, -f64::MAX, -f64::MAX, 1.0], 1.0),
        (
            vec![f64::MAX, -f64::MAX / 2.0, f64::MAX / 4.0],
            f64::MAX * 0.75,
        ),
    ] {
        let mut v = Vector::new();
        v.add_values(&values).unwrap();
        assert!(
            ulps(v.sum(), exact) <= 1,
            "{values:?}: {} vs {exact}",
            v.sum()
        );
    }
}

/// −0.0 sorts before +0.0 (IEEE 754 totalOrder), in both directions, and
/// both keep their sign.
#[test]
fn negative_zero_sorts_before_positive_zero() {
    let mut v = Vector::new();
    v.add_values(&[0.0, -0.0, 1.0, -0.0, 0.0, -1.0]).unwrap();
    let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(v.sorted(SortOrder::Ascending)),
        bits(&[-1.0, -0.0, -0.0, 0.0, 0.0, 1.0])
    );
    assert_eq!(
        bits(v.sorted(SortOrder::Descending)),
        bits(&[1.0, 0.0, 0.0, -0.0, -0.0, -1.0])
    );
}

/// The oracle can fail: the textbook one-pass formula Σx²/n − mean², on a
/// large offset with small deviations, is far more than two ulps off it.
#[test]
fn the_oracle_rejects_the_textbook_formula() {
    let values: Vec<f64> = (0..64)
        .map(|k| 2f64.powi(29) + f64::from(k % 7) * 2f64.powi(-20))
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let textbook = values.iter().map(|x| x * x).sum::<f64>() / n - mean * mean;
    let exact = exact_variance(&values, 20);
    assert!(exact > 0.0);
    assert!(
        textbook < 0.0 || ulps(textbook, exact) > 1_000_000,
        "{textbook} vs {exact}"
    );
    let mut v = Vector::new();
    v.add_values(&values).unwrap();
    assert!(ulps(v.statistics().variance.unwrap(), exact) <= 2);
}
