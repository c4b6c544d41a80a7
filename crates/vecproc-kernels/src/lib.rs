//! The benchmark kernels of the classic "native vs WASM vs JavaScript" table,
//! with their deterministic inputs and checksums.
//!
//! One implementation each, compiled natively (`vecproc-bench`) and into the
//! benchmark component `components/vector-kernels` (WIT `vecproc:bench/kernels`).
//! The shipped `vector-processor` component does not carry them: this crate,
//! with `sha2` and `libm`, is benchmark code only.
//! Inputs come from [`Xorshift32`] so the JavaScript runners (`js/bench/`)
//! build identical data; checksums let every runner prove it computed the
//! same thing.

use std::sync::OnceLock;
use std::time::Instant;

use sha2::{Digest, Sha256};

use vecproc_core::Vector;

/// The kernels, named as in WIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Sort `size` i32 values.
    SortI32,
    /// Sort `size` f64 values.
    SortF64,
    /// 3×3 Gaussian blur of a `size` × (`size`·9/16) RGBA image.
    Blur,
    /// `size` × `size` f64 matrix product.
    Matmul,
    /// SHA-256 of `size` bytes.
    Sha256,
    /// Σ sin(i)·cos(i), `size` terms, platform libm.
    Compute,
    /// The same with the pure-Rust `libm` crate.
    ComputeLibm,
    /// [`Vector`] statistics of `size` values.
    Statistics,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 8] = [
        Kernel::SortI32,
        Kernel::SortF64,
        Kernel::Blur,
        Kernel::Matmul,
        Kernel::Sha256,
        Kernel::Compute,
        Kernel::ComputeLibm,
        Kernel::Statistics,
    ];

    /// The WIT name, e.g. `sort-i32`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::SortI32 => "sort-i32",
            Kernel::SortF64 => "sort-f64",
            Kernel::Blur => "blur",
            Kernel::Matmul => "matmul",
            Kernel::Sha256 => "sha256",
            Kernel::Compute => "compute",
            Kernel::ComputeLibm => "compute-libm",
            Kernel::Statistics => "statistics",
        }
    }

    /// The kernel with this WIT name.
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Marsaglia's xorshift32 (13, 17, 5), seeded with 0x9e3779b9: cheap, and
/// easy to reproduce exactly in JavaScript with `>>>`.
#[derive(Debug, Clone)]
pub struct Xorshift32(u32);

impl Default for Xorshift32 {
    fn default() -> Self {
        Xorshift32(0x9e37_79b9)
    }
}

impl Xorshift32 {
    /// The next output.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// An f64 in [-1e6, 1e6).
    pub fn next_f64(&mut self) -> f64 {
        f64::from(self.next_u32()) / 4_294_967_296.0 * 2e6 - 1e6
    }

    /// An f64 in [-1, 1).
    pub fn next_unit(&mut self) -> f64 {
        f64::from(self.next_u32()) / 4_294_967_296.0 * 2.0 - 1.0
    }
}

/// A kernel's input.
#[derive(Debug, Clone)]
pub enum Input {
    /// For sort-i32.
    I32(Vec<i32>),
    /// For sort-f64 and statistics.
    F64(Vec<f64>),
    /// An RGBA image.
    Image {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// `width * height * 4` bytes.
        rgba: Vec<u8>,
    },
    /// Two row-major `n` × `n` matrices.
    Matrices {
        /// Order.
        n: usize,
        /// Left operand.
        a: Vec<f64>,
        /// Right operand.
        b: Vec<f64>,
    },
    /// Bytes to hash.
    Bytes(Vec<u8>),
    /// A term count.
    Terms(u32),
}

/// Height of the blur image for a width (16:9).
pub fn blur_height(width: usize) -> usize {
    width * 9 / 16
}

/// The deterministic input of `kernel` at `size`.
pub fn input(kernel: Kernel, size: u32) -> Input {
    let mut rng = Xorshift32::default();
    let n = size as usize;
    match kernel {
        Kernel::SortI32 => Input::I32((0..n).map(|_| rng.next_u32() as i32).collect()),
        Kernel::SortF64 | Kernel::Statistics => {
            Input::F64((0..n).map(|_| rng.next_f64()).collect())
        }
        Kernel::Blur => {
            let height = blur_height(n);
            let rgba = (0..n * height * 4).map(|_| rng.next_u32() as u8).collect();
            Input::Image {
                width: n,
                height,
                rgba,
            }
        }
        Kernel::Matmul => {
            let a = (0..n * n).map(|_| rng.next_unit()).collect();
            let b = (0..n * n).map(|_| rng.next_unit()).collect();
            Input::Matrices { n, a, b }
        }
        Kernel::Sha256 => Input::Bytes((0..n).map(|_| rng.next_u32() as u8).collect()),
        Kernel::Compute | Kernel::ComputeLibm => Input::Terms(size),
    }
}

/// Sorts i32 values ascending.
pub fn sort_i32(values: &mut [i32]) {
    values.sort_unstable();
}

/// Sorts f64 values ascending by IEEE total order.
pub fn sort_f64(values: &mut [f64]) {
    values.sort_unstable_by(f64::total_cmp);
}

/// 3×3 Gaussian blur, weights [1 2 1; 2 4 2; 1 2 1] / 16 with rounding,
/// every channel including alpha, neighbours clamped to the edge.
/// `src` and `dst` are `width * height * 4` bytes.
pub fn blur(width: usize, height: usize, src: &[u8], dst: &mut [u8]) {
    assert_eq!(src.len(), width * height * 4);
    assert_eq!(dst.len(), src.len());
    if width == 0 || height == 0 {
        return;
    }
    let stride = width * 4;
    for y in 0..height {
        let rows = [
            &src[y.saturating_sub(1) * stride..][..stride],
            &src[y * stride..][..stride],
            &src[(y + 1).min(height - 1) * stride..][..stride],
        ];
        let out = &mut dst[y * stride..][..stride];
        for x in 0..width {
            let xs = [x.saturating_sub(1) * 4, x * 4, (x + 1).min(width - 1) * 4];
            for c in 0..4 {
                let at = |row: &[u8], i: usize| u32::from(row[xs[i] + c]);
                let top = at(rows[0], 0) + 2 * at(rows[0], 1) + at(rows[0], 2);
                let mid = at(rows[1], 0) + 2 * at(rows[1], 1) + at(rows[1], 2);
                let bot = at(rows[2], 0) + 2 * at(rows[2], 1) + at(rows[2], 2);
                out[x * 4 + c] = ((top + 2 * mid + bot + 8) >> 4) as u8;
            }
        }
    }
}

/// `c = a · b` for row-major `n` × `n` matrices, naive i-k-j order.
pub fn matmul(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
    c.fill(0.0);
    for i in 0..n {
        let row = &mut c[i * n..][..n];
        for k in 0..n {
            let aik = a[i * n + k];
            let brow = &b[k * n..][..n];
            for (cij, bkj) in row.iter_mut().zip(brow) {
                *cij += aik * bkj;
            }
        }
    }
}

/// SHA-256 digest (the `sha2` crate).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Σ sin(i)·cos(i) with the pure-Rust `libm` crate.
pub fn compute_libm(n: u32) -> f64 {
    let mut acc = 0.0;
    for i in 0..n {
        let x = f64::from(i);
        acc += libm::sin(x) * libm::cos(x);
    }
    acc
}

/// Checksum of a sorted output: first + middle + last, 0 when empty.
pub fn checksum_sorted<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    match v {
        [] => 0.0,
        _ => v[0].into() + v[v.len() >> 1].into() + v[v.len() - 1].into(),
    }
}

/// Checksum of a blurred image: the sum of its bytes.
pub fn checksum_bytes(out: &[u8]) -> f64 {
    out.iter().map(|&b| f64::from(b)).sum()
}

/// Checksum of a matrix: the sum of its entries in row-major order.
pub fn checksum_matrix(c: &[f64]) -> f64 {
    c.iter().sum()
}

/// Checksum of a digest: its first 6 bytes as a big-endian integer.
pub fn checksum_digest(d: &[u8]) -> f64 {
    d.iter()
        .take(6)
        .fold(0.0, |acc, &b| acc * 256.0 + f64::from(b))
}

/// The `statistics` kernel: every statistic of `values` in a [`Vector`],
/// and the mean (0 for no values) as the checksum.
pub fn statistics(values: &[f64]) -> Result<f64, vecproc_core::VectorError> {
    let mut vector = Vector::new();
    vector.add_values(values)?;
    Ok(std::hint::black_box(vector.statistics())
        .mean
        .unwrap_or(0.0))
}

/// Runs `kernel` on `input` (which it may modify) and returns the checksum.
pub fn run(kernel: Kernel, input: &mut Input) -> f64 {
    match (kernel, input) {
        (Kernel::SortI32, Input::I32(v)) => {
            sort_i32(v);
            checksum_sorted(v)
        }
        (Kernel::SortF64, Input::F64(v)) => {
            sort_f64(v);
            checksum_sorted(v)
        }
        (Kernel::Statistics, Input::F64(v)) => statistics(v).expect("generated values are finite"),
        (
            Kernel::Blur,
            Input::Image {
                width,
                height,
                rgba,
            },
        ) => {
            let mut out = vec![0u8; rgba.len()];
            blur(*width, *height, rgba, &mut out);
            checksum_bytes(&out)
        }
        (Kernel::Matmul, Input::Matrices { n, a, b }) => {
            let mut c = vec![0.0; *n * *n];
            matmul(*n, a, b, &mut c);
            checksum_matrix(&c)
        }
        (Kernel::Sha256, Input::Bytes(data)) => checksum_digest(&sha256(data)),
        (Kernel::Compute, Input::Terms(n)) => vecproc_core::compute(*n),
        (Kernel::ComputeLibm, Input::Terms(n)) => compute_libm(*n),
        (kernel, _) => panic!("input does not belong to {}", kernel.name()),
    }
}

/// Generates the input once, then runs the kernel `runs` times on fresh
/// copies, timing only the kernel with `now` (a monotonic clock in
/// nanoseconds: [`instant_nanos`] natively, WASI's monotonic clock in the
/// guest, where `wasm32-unknown-unknown` std has none). Returns nanoseconds
/// per run and the last checksum.
pub fn time_kernel(kernel: Kernel, size: u32, runs: u32, now: impl Fn() -> u64) -> (Vec<u64>, f64) {
    let input = input(kernel, size);
    let mut nanos = Vec::with_capacity(runs as usize);
    let mut checksum = 0.0;
    for _ in 0..runs {
        let mut work = input.clone();
        let start = now();
        checksum = run(kernel, &mut work);
        nanos.push(now().saturating_sub(start));
        drop(std::hint::black_box(work));
    }
    (nanos, checksum)
}

/// Nanoseconds on the native monotonic clock ([`Instant`]) since its first
/// reading in this process: the clock native callers give [`time_kernel`].
pub fn instant_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_ascending<T: PartialOrd>(v: &[T]) -> bool {
        v.windows(2).all(|w| w[0] <= w[1])
    }

    #[test]
    fn xorshift_matches_the_published_sequence() {
        let mut r = Xorshift32::default();
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        // Recomputed by hand from the definition.
        let mut x: u32 = 0x9e37_79b9;
        let mut expect = Vec::new();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            expect.push(x);
        }
        assert_eq!(first, expect);
    }

    #[test]
    fn sorts_sort() {
        let mut i = input(Kernel::SortI32, 1000);
        run(Kernel::SortI32, &mut i);
        let Input::I32(v) = i else { unreachable!() };
        assert!(is_ascending(&v));
        let mut f = input(Kernel::SortF64, 1000);
        run(Kernel::SortF64, &mut f);
        let Input::F64(v) = f else { unreachable!() };
        assert!(is_ascending(&v));
    }

    #[test]
    fn blur_of_a_flat_image_is_flat_and_edges_clamp() {
        let (w, h) = (5, 3);
        let src = vec![200u8; w * h * 4];
        let mut dst = vec![0u8; src.len()];
        blur(w, h, &src, &mut dst);
        assert!(dst.iter().all(|&b| b == 200));
        // One bright pixel in a corner spreads with weights 4, 2, 2, 1 (clamped edges add up).
        let mut src = vec![0u8; w * h * 4];
        src[0] = 160;
        blur(w, h, &src, &mut dst);
        // Corner: clamping makes the pixel count 4+2+2+1 + its mirrored neighbours = 9/16.
        assert_eq!(dst[0], ((160 * 9 + 8) >> 4) as u8);
        assert_eq!(dst[4], ((160 * 3 + 8) >> 4) as u8);
    }

    #[test]
    fn matmul_identity_and_known_product() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [0.0; 4];
        matmul(2, &a, &b, &mut c);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        let id = [1.0, 0.0, 0.0, 1.0];
        matmul(2, &a, &id, &mut c);
        assert_eq!(c, a);
    }

    #[test]
    fn sha256_known_answer() {
        let d = sha256(b"abc");
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "FIPS 180-2 example: ba7816bf..."
        );
    }

    #[test]
    fn libm_compute_agrees_with_platform() {
        let (a, b) = (vecproc_core::compute(10_000), compute_libm(10_000));
        assert!((a - b).abs() < 1e-10, "{a} vs {b}");
    }

    #[test]
    fn every_kernel_runs_and_names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
            let size = match k {
                Kernel::Blur => 32,
                Kernel::Matmul => 8,
                _ => 1000,
            };
            let (nanos, checksum) = time_kernel(k, size, 2, instant_nanos);
            assert_eq!(nanos.len(), 2);
            assert!(checksum.is_finite());
        }
    }
}
