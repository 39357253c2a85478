//! Every kernel of every table this CPU runs ([`Kernels::all_here`]: the reference
//! everywhere, the native ones where the CPU has them), each against the definition of what
//! it computes: exact for the int8 product and the quantizer, a few ulp of the f64 definition
//! for the float kernels. The reference is also tested on its own (in `reference`), by hand.

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::tract_core::ops::quant::quantize_linear_f32_u8;

use super::threading::THREADING_MACS;
use super::*;
use crate::test_support::rng::Rng;

/// `f` on the thread pool of a plan of `threads`.
fn on_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let executor = match threads {
        1 => Executor::SingleThread,
        n => Executor::multithread(n),
    };
    multithread_tract_scope(executor, f)
}

mod int8_gemm {
    use super::*;

    /// The definition over the unpacked weights, in the same float steps as tract.
    fn definition(
        a: &[u8],
        w: &[i8],
        (k, n): (usize, usize),
        z: u8,
        scale: &[f32],
        bias: &[f32],
    ) -> Vec<f32> {
        let rows = a.len() / k;
        let mut out = vec![0f32; rows * n];
        for t in 0..rows {
            for c in 0..n {
                let sum: i32 = (0..k)
                    .map(|i| (a[t * k + i] as i32 - z as i32) * w[i * n + c] as i32)
                    .sum();
                out[t * n + c] = sum as f32 * scale[c] + bias[c];
            }
        }
        out
    }

    /// A random layer: activations, weights (every byte value, −128 too), scales and biases.
    struct Layer {
        a: Vec<u8>,
        w: Vec<i8>,
        scale: Vec<f32>,
        bias: Vec<f32>,
    }

    fn layer(rows: usize, k: usize, n: usize, rng: &mut Rng) -> Layer {
        Layer {
            a: (0..rows * k).map(|_| rng.next_u64() as u8).collect(),
            w: (0..k * n).map(|_| rng.next_u64() as i8).collect(),
            scale: (0..n)
                .map(|_| (rng.next_u64() % 1000 + 1) as f32 * 1.37e-6)
                .collect(),
            bias: (0..n)
                .map(|_| (rng.next_u64() % 2001) as f32 * 1e-3 - 1.0)
                .collect(),
        }
    }

    fn run(kernels: &Kernels, gemm: &Int8Gemm, a: &[u8], threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; a.len() / gemm.k() * gemm.n()];
        on_threads(threads, || kernels.int8_gemm(gemm, a, &mut out));
        out
    }

    fn check(kernels: &Kernels, (rows, k, n): (usize, usize, usize), z: u8, threads: usize) {
        let mut rng = Rng::new((rows * 31 + k * 7 + n) as u64);
        let Layer { a, w, scale, bias } = layer(rows, k, n, &mut rng);
        let gemm = Int8Gemm::new(&w, k, n, z, &scale, &bias).unwrap();
        let out = run(kernels, &gemm, &a, threads);
        let expected = definition(&a, &w, (k, n), z, &scale, &bias);
        for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{kernels:?}: {rows}×{k}×{n} z {z}, {threads} thread(s): element {i}: {got} vs \
                 {want}"
            );
        }
    }

    #[test]
    fn matches_the_definition_bit_for_bit_on_every_tile_shape() {
        // Every tile height (1 to 8 rows and their sums), one, two and three blocks, partial
        // blocks, k not a multiple of 4, one pass and several (the last one a single quad at
        // k = 257), and products big enough to be threaded.
        for kernels in Kernels::all_here() {
            for rows in [1, 5, 7, 8, 9, 17, 197] {
                for (k, n) in [
                    (4, 16),
                    (7, 33),
                    (64, 64),
                    (192, 80),
                    (3, 1),
                    (257, 48),
                    (768, 40),
                ] {
                    check(kernels, (rows, k, n), 128, 1);
                }
            }
            check(kernels, (197, 768, 96), 128, 2);
            check(kernels, (64, 1024, 272), 0, 2);
            check(kernels, (30, 2048, 40), 255, 3);
        }
    }

    #[test]
    fn quick_gelu_is_the_activation_of_the_exact_output() {
        let alpha = 1.702f32;
        for kernels in Kernels::all_here() {
            let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
            for (rows, k, n, threads) in [(7, 64, 40, 1), (197, 192, 80, 2)] {
                let Layer { a, w, scale, bias } = layer(rows, k, n, &mut rng);
                // Scales large enough that the outputs cover the sigmoid's whole curve.
                let scale: Vec<f32> = scale.iter().map(|s| s * 300.0).collect();
                let plain = Int8Gemm::new(&w, k, n, 128, &scale, &bias).unwrap();
                let gelu = plain
                    .clone()
                    .with_activation(Activation::QuickGelu { alpha });
                let ys = run(kernels, &plain, &a, threads);
                let gs = run(kernels, &gelu, &a, threads);
                let spread = ys.iter().fold(0f32, |m, y| m.max(y.abs()));
                assert!(spread > 8.0, "outputs up to {spread} only");
                for (i, (&y, &g)) in ys.iter().zip(&gs).enumerate() {
                    // α·y rounded to f32 first, as in the graph.
                    let want = y as f64 / (1.0 + (-((alpha * y) as f64)).exp());
                    let ulps = (want as f32).to_bits().abs_diff(g.to_bits());
                    assert!(
                        ulps <= 4 || (g as f64 - want).abs() < 1e-30,
                        "{kernels:?}: {rows}×{k}×{n}: element {i}: quick_gelu({y}) = {g}, \
                         want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn sums_are_exact_at_the_extremes() {
        // The largest |Σ| the layer sizes allow: a = 255 with z = 0 against w = −128.
        let k = packing::MAX_K;
        let a = vec![255u8; 2 * k];
        let w = vec![-128i8; k * 16];
        let gemm = Int8Gemm::new(&w, k, 16, 0, &[1.0; 16], &[0.0; 16]).unwrap();
        for kernels in Kernels::all_here() {
            let out = run(kernels, &gemm, &a, 1);
            let want = (255 * -128 * k as i64) as f32;
            assert!(out.iter().all(|&y| y == want), "{kernels:?}");
        }
    }
}

mod attention {
    use super::*;

    fn run(kernels: &Kernels, shape: Heads, qkv: &[Vec<f32>; 3], threads: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; shape.values()];
        let [q, k, v] = qkv;
        on_threads(threads, || kernels.attention(shape, q, k, v, &mut out));
        out
    }

    /// Random q, k, v with scores spread over about ±`spread`.
    fn inputs(shape: Heads, spread: f32, seed: u64) -> [Vec<f32>; 3] {
        let mut rng = Rng::new(seed);
        let scale = (spread / shape.width as f32).sqrt();
        [
            rng.vec(shape.values(), -scale, scale),
            rng.vec(shape.values(), -scale, scale),
            rng.vec(shape.values(), -1.0, 1.0),
        ]
    }

    /// The bound of `kernels`' attention on values v in [−1, 1] and scores of at most
    /// `largest` in magnitude, where an f32 kernel's is `f32_bound`: an attention computed in
    /// f16 is held to [`HALF_VALUES_TOLERANCE`] of max |v| plus [`HALF_SCORES_TOLERANCE`] per
    /// unit of the largest |score|.
    fn bound(kernels: &Kernels, largest: f32, f32_bound: f32) -> f32 {
        match kernels.attention_kernel().half {
            true => HALF_VALUES_TOLERANCE + HALF_SCORES_TOLERANCE * largest,
            false => f32_bound,
        }
    }

    /// The largest |q_i · k_j| over every head.
    fn largest_score(shape: Heads, [q, k, _]: &[Vec<f32>; 3]) -> f32 {
        let at = |t: usize, h: usize| t * shape.stride() + h * shape.width;
        let mut largest = 0f32;
        for h in 0..shape.heads {
            for i in 0..shape.tokens {
                for j in 0..shape.tokens {
                    let (q, k) = (&q[at(i, h)..][..shape.width], &k[at(j, h)..][..shape.width]);
                    let s: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                    largest = largest.max(s.abs());
                }
            }
        }
        largest
    }

    /// Largest |table − reference| (the reference is the f64 definition, rounded once).
    fn error(kernels: &Kernels, shape: Heads, qkv: &[Vec<f32>; 3], threads: usize) -> f32 {
        let ours = run(kernels, shape, qkv, threads);
        let want = run(Kernels::reference(), shape, qkv, 1);
        ours.iter()
            .zip(&want)
            .map(|(&a, &b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    fn heads(tokens: usize, heads: usize, width: usize) -> Heads {
        Heads {
            tokens,
            heads,
            width,
        }
    }

    #[test]
    fn matches_the_reference_on_every_tile_shape() {
        // Tokens: one row, tiles of 1–6 rows, partial and whole registers of keys; widths:
        // below, at and past one register and past one tile of four; the demo's and ViT-B/16's.
        let shapes = [
            heads(1, 1, 1),
            heads(5, 2, 3),
            heads(17, 3, 16),
            heads(23, 2, 20),
            heads(65, 4, 16),
            heads(70, 1, 80),
            heads(197, 2, 64),
        ];
        for kernels in Kernels::all_here() {
            for (i, &shape) in shapes.iter().enumerate() {
                let qkv = inputs(shape, 8.0, i as u64);
                let largest = largest_score(shape, &qkv);
                for threads in [1, 2] {
                    let e = error(kernels, shape, &qkv, threads);
                    assert!(
                        e < bound(kernels, largest, 2e-6),
                        "{kernels:?}: {shape:?}, {threads} thread(s): {e:e}, scores up to {largest}"
                    );
                }
            }
        }
    }

    #[test]
    fn peaked_scores_stay_finite_and_exact() {
        // Scores up to about ±400: most probabilities underflow to 0, the max is 1. Each f32
        // score of magnitude ~400 carries a rounding error of ~400·2⁻²⁴ that moves its
        // probability by as much relative: the bound is looser than for scores of ±8.
        let shape = heads(40, 3, 24);
        let qkv = inputs(shape, 400.0, 9);
        let largest = largest_score(shape, &qkv);
        for kernels in Kernels::all_here() {
            let e = error(kernels, shape, &qkv, 1);
            assert!(
                e < bound(kernels, largest, 1e-5),
                "{kernels:?}: {e:e}, scores up to {largest}"
            );
        }
    }

    #[test]
    fn a_key_shared_by_every_token_changes_nothing() {
        // Adding the same vector c to every key adds q_i · c to row i's scores, which the
        // softmax cancels. Here c is 300 times the keys' own spread and the rows' added
        // constants reach a few hundred: in f16 such sums lose the scores' own values to
        // rounding. An f16 kernel is held to the bound of the keys without c; an f32 kernel's
        // scores round to 2⁻²⁴ of their magnitude, so its bound grows with them.
        let shape = heads(197, 2, 64);
        let plain = inputs(shape, 8.0, 4);
        let largest = largest_score(shape, &plain);
        let spread = (8.0 / shape.width as f32).sqrt();
        let shared = Rng::new(5).vec(shape.width, -300.0 * spread, 300.0 * spread);
        let mut moved = plain.clone();
        for (i, x) in moved[1].iter_mut().enumerate() {
            *x += shared[i % shape.width];
        }
        let moved_largest = largest_score(shape, &moved);
        assert!(
            moved_largest > 20.0 * largest,
            "{moved_largest} vs {largest}"
        );
        for kernels in Kernels::all_here() {
            let want = run(kernels, shape, &plain, 1);
            let got = run(kernels, shape, &moved, 1);
            let e = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            let bound = bound(kernels, largest, moved_largest * 2f32.powi(-20));
            assert!(e < bound, "{kernels:?}: {e:e}");
        }
    }

    #[test]
    fn threads_share_the_heads_of_a_large_attention() {
        // Above the threading bound the heads run as parts; the result is the same.
        let shape = heads(130, 4, 32);
        assert!(shape.macs() >= THREADING_MACS);
        let qkv = inputs(shape, 4.0, 3);
        for kernels in Kernels::all_here() {
            let one = run(kernels, shape, &qkv, 1);
            assert_eq!(one, run(kernels, shape, &qkv, 3), "{kernels:?}");
        }
    }

    #[test]
    fn shapes_are_checked() {
        let shape = heads(3, 2, 4);
        let x = vec![0f32; shape.values()];
        for kernels in Kernels::all_here() {
            let mut short = vec![0f32; shape.values() - 1];
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                kernels.attention(shape, &x, &x, &x, &mut short)
            }));
            assert!(caught.is_err(), "{kernels:?}");
        }
    }
}

mod layer_norm {
    use super::*;

    #[test]
    fn matches_the_reference_on_partial_and_whole_registers() {
        for kernels in Kernels::all_here() {
            let mut rng = Rng::new(5);
            for (rows, c, offset) in [(1, 1, 0.0), (3, 7, 2.0), (5, 64, -30.0), (197, 768, 100.0)] {
                let x: Vec<f32> = rng
                    .vec(rows * c, -3.0, 3.0)
                    .iter()
                    .map(|v| v + offset)
                    .collect();
                let gamma = rng.vec(c, 0.5, 1.5);
                let beta = rng.vec(c, -0.2, 0.2);
                let params = LayerNormParams {
                    mean_factor: 1.0 / c as f32,
                    eps: 1e-5,
                    gamma: &gamma,
                    beta: &beta,
                };
                let mut out = vec![f32::NAN; x.len()];
                kernels.layer_norm(&params, &x, &mut out);
                let mut want = vec![f32::NAN; x.len()];
                Kernels::reference().layer_norm(&params, &x, &mut want);
                // Measured: at most 7·10⁻⁷, the row offset by 100 included.
                for (i, (&got, &w)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (got - w).abs() <= 2e-6,
                        "{kernels:?}: {rows}×{c}: value {i}: {got} vs {w}"
                    );
                }
            }
        }
    }
}

mod quantize {
    use super::*;

    /// Values on, just below and just above every rounding tie from −300 to 300, the
    /// saturation edges, signed zeros, infinities and NaN.
    fn awkward_values() -> Vec<f32> {
        let mut xs = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            1e30,
            -1e30,
        ];
        for half in -600..=600 {
            let tie = half as f32 * 0.5;
            xs.extend([tie, tie.next_down(), tie.next_up()]);
        }
        xs
    }

    #[test]
    fn matches_tracts_quantize_linear_bit_for_bit() {
        let values = awkward_values();
        for kernels in Kernels::all_here() {
            for inv_scale in [1.0f32, 0.5, 2.0, 1.0 / 0.037, 31.75, 1e-3] {
                for zero_point in [0u8, 1, 127, 128, 200, 255] {
                    let quantization = Quantization {
                        inv_scale,
                        zero_point,
                    };
                    let mut ours = vec![0u8; values.len()];
                    kernels.quantize(quantization, &values, &mut ours);
                    for (x, y) in values.iter().zip(&ours) {
                        let at =
                            format!("{kernels:?}: x {x:e} 1/scale {inv_scale} zp {zero_point}");
                        if x * inv_scale >= 2f32.powi(30) {
                            // tract's `as i32 + zero_point` overflows there (`passes::quantize`).
                            assert_eq!(*y, 255, "{at} saturates");
                            continue;
                        }
                        let theirs = quantize_linear_f32_u8(*x, inv_scale, zero_point as i32);
                        assert_eq!(*y, theirs, "{at}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_best_table_is_chosen_once_and_the_reference_is_portable() {
    assert!(std::ptr::eq(Kernels::best(), Kernels::best()));
    let reference = Kernels::reference();
    assert!(!reference.int8_gemm_kernel().native);
    assert!(!reference.attention_kernel().native);
    assert!(!reference.layer_norm_kernel().native);
    assert!(!reference.quantize_kernel().native);
    assert_eq!(Kernels::all_here()[0], reference);
}
