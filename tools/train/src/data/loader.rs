//! Batching: decode, transform and stack a dataset's images, in parallel, reproducibly, without
//! ever aborting on a bad image.
//!
//! - **Order.** Without shuffling, batches follow the dataset. With `shuffle: Some(seed)` the
//!   order is a Fisher–Yates permutation drawn from a ChaCha8 key made of `(seed, epoch)`: the
//!   same seed and epoch give the same order.
//! - **Randomness.** In training, sample `i` (its index in the dataset, not its position in the
//!   batch) is augmented with a ChaCha8 RNG keyed by `(seed, epoch, i)`. The pixels of a sample
//!   therefore do not depend on the thread count, on thread scheduling, on the batch size or on the
//!   shuffle.
//! - **Parallelism.** Each batch is decoded by `std::thread::scope` workers (default: the available
//!   parallelism) that take samples one at a time from a shared counter.
//! - **Faults.** A missing, corrupt, truncated or non-image file (or a decoder panic) becomes a
//!   [`LoadFailure`] in its batch and the sample is skipped. A batch whose every image failed is
//!   still returned, with empty pixels, so the caller can report it.

use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use xrvlm_runtime::preprocess::Preprocess;

use super::augment::Augment;
use super::dataset::Dataset;

/// Domain tag of the per-sample augmentation RNG key (keeps it apart from the shuffle key).
const AUGMENT_TAG: u64 = u64::from_le_bytes(*b"augment\0");
/// Domain tag of the per-epoch shuffle RNG key.
const SHUFFLE_TAG: u64 = u64::from_le_bytes(*b"shuffle\0");

/// How each image becomes a CHW float tensor.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Deterministic evaluation preprocessing (`xrvlm-method.md` §7), shared with the runtime.
    Eval(Preprocess),
    /// Random training augmentation (§6); sample `i` uses an RNG keyed by `(seed, epoch, i)`.
    Train {
        /// The augmentation.
        augment: Augment,
        /// Run seed.
        seed: u64,
        /// Epoch; a new epoch gives new crops and flips.
        epoch: u64,
    },
}

impl Transform {
    /// Side length S of the output images.
    pub fn image_size(&self) -> u32 {
        match self {
            Transform::Eval(p) => p.crop,
            Transform::Train { augment, .. } => augment.size,
        }
    }

    /// Floats per image: `3 * S * S`.
    pub fn output_len(&self) -> usize {
        let s = self.image_size() as usize;
        3 * s * s
    }

    /// Transforms a decoded image, the `index`-th sample of the dataset.
    fn apply(&self, img: &RgbImage, index: usize) -> Result<Vec<f32>, String> {
        match self {
            Transform::Eval(p) => p.apply(img).map_err(|e| e.to_string()),
            Transform::Train {
                augment,
                seed,
                epoch,
            } => Ok(augment.apply(img, &mut sample_rng(*seed, *epoch, index))),
        }
    }
}

/// The RNG that augments sample `index` in `epoch` of the run seeded with `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> ChaCha8Rng {
    keyed_rng([seed, epoch, index as u64, AUGMENT_TAG])
}

/// A ChaCha8 RNG whose 256-bit key is the four words, little-endian.
fn keyed_rng(words: [u64; 4]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// An image that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The image file.
    pub path: PathBuf,
    /// What went wrong (decoder or preprocessing message).
    pub error: String,
}

/// A batch of successfully loaded images plus the failures met while loading it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// `N * 3 * S * S` floats: N images, each CHW, normalised.
    pub pixels: Vec<f32>,
    /// Label of each loaded image.
    pub labels: Vec<u32>,
    /// Path of each loaded image.
    pub paths: Vec<PathBuf>,
    /// Dataset index of each loaded image.
    pub indices: Vec<usize>,
    /// Images of this batch that were skipped.
    pub failures: Vec<LoadFailure>,
}

impl Batch {
    /// Number of loaded images N.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no image loaded (possibly because all failed).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Iterates a dataset in batches of transformed images.
#[derive(Debug, Clone)]
pub struct Loader<'a> {
    /// The samples.
    dataset: &'a Dataset,
    /// Eval preprocessing or train augmentation.
    transform: Transform,
    /// Samples per batch (at least 1); the last batch may be smaller.
    batch_size: usize,
    /// Dataset indices in visiting order (shuffled or identity).
    order: Vec<usize>,
    /// Decoding threads per batch (at least 1).
    threads: usize,
}

impl<'a> Loader<'a> {
    /// A loader over `ds`. `batch_size` 0 is taken as 1. With `shuffle: Some(seed)` the order is
    /// a permutation keyed by `(seed, epoch)`; with `None` it is the dataset order. Augmentation
    /// randomness comes from [`Transform::Train`]'s own seed and epoch.
    pub fn new(
        ds: &'a Dataset,
        transform: Transform,
        batch_size: usize,
        shuffle: Option<u64>,
        epoch: u64,
    ) -> Self {
        let order = match shuffle {
            Some(seed) => shuffled(ds.samples.len(), seed, epoch),
            None => (0..ds.samples.len()).collect(),
        };
        Self {
            dataset: ds,
            transform,
            batch_size: batch_size.max(1),
            order,
            threads: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        }
    }

    /// Sets the number of decoding threads (0 is taken as 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Number of batches: `ceil(len / batch_size)`.
    pub fn len_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Side length S of the output images.
    pub fn image_size(&self) -> u32 {
        self.transform.image_size()
    }

    /// Dataset indices in visiting order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The dataset being loaded.
    pub fn dataset(&self) -> &'a Dataset {
        self.dataset
    }

    /// Loads batch `b` (0-based), or `None` past the end.
    pub fn batch(&self, b: usize) -> Option<Batch> {
        let start = b.checked_mul(self.batch_size)?;
        if start >= self.order.len() {
            return None;
        }
        let end = (start + self.batch_size).min(self.order.len());
        Some(self.load(&self.order[start..end]))
    }

    /// Iterates over all batches in order.
    pub fn iter(&self) -> Batches<'_, 'a> {
        Batches {
            loader: self,
            next: 0,
        }
    }

    /// Decodes and transforms `indices` in parallel, then assembles them in order.
    fn load(&self, indices: &[usize]) -> Batch {
        let results = self.decode_all(indices);
        let mut batch = Batch {
            pixels: Vec::with_capacity(indices.len() * self.transform.output_len()),
            ..Batch::default()
        };
        for (&index, result) in indices.iter().zip(results) {
            let sample = &self.dataset.samples[index];
            match result {
                Ok(pixels) => {
                    batch.pixels.extend_from_slice(&pixels);
                    batch.labels.push(sample.label as u32);
                    batch.paths.push(sample.path.clone());
                    batch.indices.push(index);
                }
                Err(error) => batch.failures.push(LoadFailure {
                    path: sample.path.clone(),
                    error,
                }),
            }
        }
        batch
    }

    /// One result per index, in the same order; workers pull indices from a shared counter.
    fn decode_all(&self, indices: &[usize]) -> Vec<Result<Vec<f32>, String>> {
        let workers = self.threads.min(indices.len());
        if workers <= 1 {
            return indices.iter().map(|&i| self.decode_one(i)).collect();
        }
        let next = AtomicUsize::new(0);
        let mut slots: Vec<Option<Result<Vec<f32>, String>>> = vec![None; indices.len()];
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| self.worker(indices, &next)))
                .collect();
            for handle in handles {
                // Workers catch per-sample panics, so a join error cannot carry lost results.
                for (pos, result) in handle.join().unwrap_or_default() {
                    slots[pos] = Some(result);
                }
            }
        });
        slots
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| Err("decoding thread stopped".to_string())))
            .collect()
    }

    /// Takes positions from `next` until none is left; returns `(position, result)` pairs.
    fn worker(
        &self,
        indices: &[usize],
        next: &AtomicUsize,
    ) -> Vec<(usize, Result<Vec<f32>, String>)> {
        let mut done = Vec::new();
        loop {
            let pos = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = indices.get(pos) else {
                return done;
            };
            done.push((pos, self.decode_one(index)));
        }
    }

    /// Loads and transforms one sample; a panic in the decoder becomes an error.
    fn decode_one(&self, index: usize) -> Result<Vec<f32>, String> {
        let sample = &self.dataset.samples[index];
        let work = || -> Result<Vec<f32>, String> {
            let img = sample.image().map_err(|e| e.to_string())?;
            if img.width() == 0 || img.height() == 0 {
                return Err(format!(
                    "image is {}x{}; expected a non-empty image",
                    img.width(),
                    img.height()
                ));
            }
            self.transform.apply(&img, index)
        };
        catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|_| Err("the image decoder panicked on this file".to_string()))
    }
}

/// The permutation of `0..n` for `(seed, epoch)` (Fisher–Yates, from the back).
fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = keyed_rng([seed, epoch, 0, SHUFFLE_TAG]);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

/// Iterator over a [`Loader`]'s batches; each `next` decodes one batch.
#[derive(Debug)]
pub struct Batches<'l, 'a> {
    loader: &'l Loader<'a>,
    next: usize,
}

impl Iterator for Batches<'_, '_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.loader.batch(self.next)?;
        self.next += 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.loader.len_batches().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_, '_> {}

impl<'l, 'a> IntoIterator for &'l Loader<'a> {
    type Item = Batch;
    type IntoIter = Batches<'l, 'a>;

    fn into_iter(self) -> Batches<'l, 'a> {
        self.iter()
    }
}

/// The batch's pixels as an `(N, 3, S, S)` f32 tensor on `device`.
pub fn to_tensor(batch: &Batch, size: u32, device: &Device) -> candle_core::Result<Tensor> {
    let s = size as usize;
    Tensor::from_slice(&batch.pixels, (batch.len(), 3, s, s), device)
}

/// The batch's labels as an `(N,)` u32 tensor on `device`.
pub fn labels_tensor(batch: &Batch, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&batch.labels, batch.len(), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::Augment;
    use crate::data::dataset::Sample;
    use crate::data::test_images::{write_garbage, write_png, write_truncated_png};
    use std::collections::HashMap;
    use std::path::Path;

    const SIZE: u32 = 8;

    /// Six good PNGs of various shapes in two classes.
    fn good_dataset(root: &Path) -> Dataset {
        let shapes = [(20, 12), (9, 30), (16, 16), (40, 8), (11, 11), (25, 19)];
        let samples = shapes
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| {
                let path = root.join(format!("c{}/{i}.png", i % 2));
                write_png(&path, w, h, i as u8 * 40);
                Sample {
                    path,
                    label: i % 2,
                    region: None,
                }
            })
            .collect();
        Dataset::new("good", vec!["even".into(), "odd".into()], samples).unwrap()
    }

    /// `good_dataset` plus a corrupt JPEG, a truncated PNG and a missing file, interleaved.
    fn mixed_dataset(root: &Path) -> Dataset {
        let mut ds = good_dataset(root);
        let corrupt = root.join("c0/corrupt.jpg");
        let truncated = root.join("c1/truncated.png");
        write_garbage(&corrupt);
        write_truncated_png(&truncated);
        let missing = root.join("c0/missing.png");
        ds.samples.insert(
            1,
            Sample {
                path: corrupt,
                label: 0,
                region: None,
            },
        );
        ds.samples.insert(
            4,
            Sample {
                path: truncated,
                label: 1,
                region: None,
            },
        );
        ds.samples.push(Sample {
            path: missing,
            label: 0,
            region: None,
        });
        ds
    }

    fn eval() -> Transform {
        Transform::Eval(Preprocess::for_image_size(SIZE))
    }

    fn train(seed: u64, epoch: u64) -> Transform {
        let augment = Augment::from_preprocess(&Preprocess::for_image_size(SIZE));
        Transform::Train {
            augment,
            seed,
            epoch,
        }
    }

    /// Pixels of every loaded sample, keyed by dataset index.
    fn per_sample(loader: &Loader<'_>) -> HashMap<usize, Vec<f32>> {
        let n = loader.transform.output_len();
        let mut out = HashMap::new();
        for batch in loader {
            for (k, &index) in batch.indices.iter().enumerate() {
                out.insert(index, batch.pixels[k * n..(k + 1) * n].to_vec());
            }
        }
        out
    }

    #[test]
    fn eval_batches_cover_the_dataset_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ds = good_dataset(dir.path());
        let loader = Loader::new(&ds, eval(), 4, None, 0).with_threads(3);
        assert_eq!(loader.len_batches(), 2);
        assert_eq!(loader.iter().len(), 2);
        let batches: Vec<Batch> = loader.iter().collect();
        assert_eq!(batches[0].len(), 4);
        assert_eq!(batches[1].len(), 2);
        assert_eq!(batches[0].pixels.len(), 4 * 3 * 8 * 8);
        assert_eq!(batches[0].labels, vec![0, 1, 0, 1]);
        assert_eq!(batches[1].indices, vec![4, 5]);
        assert!(batches.iter().all(|b| b.failures.is_empty()));

        let expected = Preprocess::for_image_size(SIZE)
            .apply(&crate::data::test_images::pattern(20, 12, 0))
            .unwrap();
        assert_eq!(&batches[0].pixels[..expected.len()], expected.as_slice());
    }

    #[test]
    fn bad_images_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let ds = mixed_dataset(dir.path());
        let loader = Loader::new(&ds, eval(), 3, None, 0).with_threads(2);
        let batches: Vec<Batch> = loader.iter().collect();
        let loaded: usize = batches.iter().map(Batch::len).sum();
        let failures: Vec<&LoadFailure> = batches.iter().flat_map(|b| &b.failures).collect();
        assert_eq!(loaded, 6);
        assert_eq!(failures.len(), 3);
        for (failure, name) in failures
            .iter()
            .zip(["corrupt.jpg", "truncated.png", "missing.png"])
        {
            assert!(failure.path.ends_with(name), "{failure:?}");
            assert!(!failure.error.is_empty());
        }
        for b in &batches {
            assert_eq!(b.pixels.len(), b.len() * 3 * 8 * 8);
            assert_eq!(b.paths.len(), b.len());
        }
    }

    #[test]
    fn a_batch_where_everything_failed_is_still_returned() {
        let dir = tempfile::tempdir().unwrap();
        let ds = mixed_dataset(dir.path());
        let bad_names = ["corrupt.jpg", "truncated.png", "missing.png"];
        let bad = ds.filter("bad", |_, s| bad_names.iter().any(|n| s.path.ends_with(n)));
        assert_eq!(bad.len(), 3);
        let loader = Loader::new(&bad, train(1, 0), 8, Some(3), 0);
        let batches: Vec<Batch> = loader.iter().collect();
        assert_eq!(batches.len(), 1);
        assert!(batches[0].is_empty() && batches[0].pixels.is_empty());
        assert_eq!(batches[0].failures.len(), 3);
        let t = to_tensor(&batches[0], SIZE, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[0, 3, 8, 8]);
    }

    #[test]
    fn shuffle_is_a_seeded_permutation_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let ds = good_dataset(dir.path());
        let order = |seed, epoch| {
            Loader::new(&ds, eval(), 2, Some(seed), epoch)
                .order()
                .to_vec()
        };
        assert_eq!(order(5, 1), order(5, 1));
        let mut sorted = order(5, 1);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        let distinct: std::collections::HashSet<Vec<usize>> = (0..8).map(|e| order(5, e)).collect();
        assert!(distinct.len() > 1, "every epoch gave the same order");
        assert_eq!(shuffled(100, 1, 2), shuffled(100, 1, 2));
        assert_ne!(shuffled(100, 1, 2), shuffled(100, 2, 2));
    }

    #[test]
    fn train_pixels_depend_only_on_seed_epoch_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let ds = mixed_dataset(dir.path());
        let a = per_sample(&Loader::new(&ds, train(7, 3), 2, None, 0).with_threads(1));
        let b = per_sample(&Loader::new(&ds, train(7, 3), 5, Some(11), 4).with_threads(4));
        assert_eq!(a.len(), 6);
        assert_eq!(a, b);
        let other_epoch = per_sample(&Loader::new(&ds, train(7, 4), 2, None, 0));
        assert_ne!(a, other_epoch);
    }

    #[test]
    fn to_tensor_gives_nchw() {
        let dir = tempfile::tempdir().unwrap();
        let ds = good_dataset(dir.path());
        let loader = Loader::new(&ds, eval(), 4, None, 0);
        let batch = loader.batch(0).unwrap();
        let t = to_tensor(&batch, loader.image_size(), &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[4, 3, 8, 8]);
        assert_eq!(t.dtype(), candle_core::DType::F32);
        let first: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(first, batch.pixels);
        let labels = labels_tensor(&batch, &Device::Cpu).unwrap();
        assert_eq!(labels.to_vec1::<u32>().unwrap(), batch.labels);
        assert!(loader.batch(2).is_none());
    }

    #[test]
    fn zero_batch_size_and_threads_are_clamped() {
        let dir = tempfile::tempdir().unwrap();
        let ds = good_dataset(dir.path());
        let loader = Loader::new(&ds, eval(), 0, None, 0).with_threads(0);
        assert_eq!(loader.len_batches(), 6);
        assert_eq!(loader.batch(5).unwrap().len(), 1);
    }
}
