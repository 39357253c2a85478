//! Choosing and preprocessing the images an export needs (calibration, golden, evaluation):
//! classes in turn so that every class is represented, unreadable files skipped with a warning.

use xrvlm_runtime::preprocess::Preprocess;

use super::BundleError;
use crate::data::{Dataset, Sample};

/// Up to `count` samples of `ds`, taking the classes in turn (the first image of every class,
/// then the second, …), in the dataset's deterministic order.
pub fn pick_per_class(ds: &Dataset, count: usize) -> Vec<Sample> {
    let mut by_class: Vec<Vec<&Sample>> = vec![Vec::new(); ds.classes.len()];
    for s in &ds.samples {
        by_class[s.label].push(s);
    }
    let deepest = by_class.iter().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| by_class.iter().filter_map(move |c| c.get(i)))
        .take(count)
        .map(|s| (*s).clone())
        .collect()
}

/// The preprocessed pixels `(N, 3, S, S)` flattened (a boxed sample's crop, cut as a device
/// cuts it), and the samples that loaded; a file that cannot be read is reported on stderr and
/// left out.
pub fn preprocess_files(
    samples: &[Sample],
    preprocess: &Preprocess,
) -> Result<(Vec<f32>, Vec<Sample>), BundleError> {
    let mut pixels = Vec::new();
    let mut kept = Vec::new();
    for s in samples {
        match s.image() {
            Ok(image) => {
                let chw = preprocess
                    .apply(&image)
                    .map_err(|e| BundleError::Data(format!("{}: {e}", s.path.display())))?;
                pixels.extend(chw);
                kept.push(s.clone());
            }
            Err(e) => eprintln!("warning: skipped {e}"),
        }
    }
    Ok((pixels, kept))
}
