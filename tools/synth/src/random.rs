//! Keyed random streams and the few distributions the generator needs.
//!
//! Every random decision of the synthetic world comes from a ChaCha8 stream keyed by a domain tag
//! and three integers (world or seed, class, image), never from a shared generator, so the output
//! does not depend on thread scheduling, on the number of classes or on the order of generation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Domain tag of the species streams, keyed by (world, species index, attempt).
pub const DOMAIN_SPECIES: u64 = 0x5350_4543_4945_5331;
/// Domain tag of the name streams, keyed by (world, species index, 0).
pub const DOMAIN_NAME: u64 = 0x4e41_4d45_5331_0000;
/// Domain tag of the image streams, keyed by (seed, class stream, image index).
pub const DOMAIN_IMAGE: u64 = 0x494d_4147_4553_3101;
/// Domain tag of the scene-frame streams, keyed by (seed, 0, frame index).
pub const DOMAIN_SCENE: u64 = 0x5343_454e_4553_3101;
/// Domain tag of the frame-sequence streams, keyed by (seed, sequence index, 0).
pub const DOMAIN_SEQUENCE: u64 = 0x5345_5155_454e_4301;
/// Domain tag of a fixed scene's foreground, replayed identically in every frame of a sequence;
/// keyed by (a key drawn from the sequence's stream, 0, 0).
pub const DOMAIN_FOREGROUND: u64 = 0x464f_5245_4752_4401;

/// A ChaCha8 stream keyed by a domain tag and three integers; equal keys give equal streams,
/// different keys independent ones.
pub fn keyed_rng(domain: u64, a: u64, b: u64, c: u64) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    for (chunk, word) in seed.chunks_exact_mut(8).zip([domain, a, b, c]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(seed)
}

/// A uniform draw in `lo..hi` (`lo` when the range is empty).
pub fn uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// A draw in `lo..hi` (both positive) whose logarithm is uniform: as many draws between 1 and 2
/// as between 10 and 20, so that small values are common.
pub fn log_uniform<R: Rng>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    uniform(rng, lo.ln(), hi.ln()).exp()
}

/// `true` with probability `p`; always consumes one draw, whatever `p` is, so that changing a
/// probability never shifts the rest of the stream.
pub fn chance<R: Rng>(rng: &mut R, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// A uniform index in `0..len` (0 when `len` is 0).
pub fn index<R: Rng>(rng: &mut R, len: usize) -> usize {
    let x = rng.random::<u64>();
    if len == 0 {
        0
    } else {
        (x % len as u64) as usize
    }
}

/// A uniform integer in `lo..=hi`.
pub fn between<R: Rng>(rng: &mut R, lo: usize, hi: usize) -> usize {
    lo + index(rng, hi.saturating_sub(lo) + 1)
}

/// A uniformly chosen element of a non-empty array (every array passed here is a constant).
pub fn pick<R: Rng, T: Copy, const N: usize>(rng: &mut R, items: &[T; N]) -> T {
    items[index(rng, N)]
}

/// A standard normal draw (Box-Muller, one value per call).
pub fn gaussian<R: Rng>(rng: &mut R) -> f32 {
    let u1 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Fisher-Yates shuffle driven by [`index`].
pub fn shuffle<R: Rng, T>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = index(rng, i + 1);
        items.swap(i, j);
    }
}
