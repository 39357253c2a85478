//! `xrvlm classify PATH… --explain DIR`: besides the usual records, one part-map sheet per
//! classified image, `DIR/<file stem>.png` ([`xrvlm_runtime::part_maps`]); a stem met twice
//! in one run gets `.2`, `.3`… before `.png`.
//!
//! Images are classified one at a time on a plan that also returns the part maps
//! ([`Classifier::new_explained`]); the records are those `classify` writes without
//! `--explain` (the parts, hence the predictions, are bit for bit the same). An image that
//! cannot be read is recorded as a failure and gets no sheet; a sheet that cannot be written
//! stops the run (the folder is unusable, not the image).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xrvlm_runtime::classifier::{Classifier, Prediction};
use xrvlm_runtime::field::decision::Decider;
use xrvlm_runtime::part_maps::{draw_sheet, write_sheet};

use super::inputs::Input;
use super::output::Record;

/// Where the sheets of one run go, and the names already given.
pub struct SheetFolder {
    dir: PathBuf,
    used: HashMap<String, usize>,
}

impl SheetFolder {
    /// The folder `dir`, created if missing.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--explain: creating {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            used: HashMap::new(),
        })
    }

    /// The sheet file of `image`: its stem, numbered from the second time a stem comes.
    fn name_for(&mut self, image: &Path) -> PathBuf {
        let stem = image
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        let count = self.used.entry(stem.clone()).or_insert(0);
        *count += 1;
        match *count {
            1 => self.dir.join(format!("{stem}.png")),
            n => self.dir.join(format!("{stem}.{n}.png")),
        }
    }
}

/// Records for one batch of inputs, in order, each classified image's sheet written to `folder`
/// and its prediction decided by `decider`, as `classify` does without `--explain`.
pub fn explain_chunk(
    classifier: &Classifier,
    decider: &Decider,
    chunk: &[Input],
    k: usize,
    folder: &mut SheetFolder,
) -> Result<Vec<Record>> {
    chunk
        .iter()
        .map(|input| {
            let outcome = match input {
                Input::File(path) => match classifier.load_image(path) {
                    Ok(image) => {
                        let prediction = explain_one(classifier, path, &image, k, folder)?;
                        let answer = decider.decide(&prediction);
                        Ok((prediction, answer))
                    }
                    Err(e) => Err(e.to_string()),
                },
                Input::Unusable(path, why) => Err(format!("{}: {why}", path.display())),
            };
            Ok(Record {
                file: input.path().to_string_lossy().into_owned(),
                outcome,
            })
        })
        .collect()
}

/// Classifies one preprocessed image and writes its sheet.
fn explain_one(
    classifier: &Classifier,
    path: &Path,
    image: &[f32],
    k: usize,
    folder: &mut SheetFolder,
) -> Result<Prediction> {
    let explained = classifier
        .explain_preprocessed(image, k)
        .context("running the image model")?;
    let title = sheet_title(&explained.prediction);
    let sheet = draw_sheet(image, classifier.preprocess(), &explained.maps, &title)
        .with_context(|| format!("drawing the part maps of {}", path.display()))?;
    write_sheet(&sheet, &folder.name_for(path))?;
    Ok(explained.prediction)
}

/// "top: label 97.3%", with "unknown" first when the open-world rule says so.
pub fn sheet_title(prediction: &Prediction) -> String {
    let best = &prediction.top[0];
    let top = format!("{} {:.1}%", best.label, best.probability * 100.0);
    match prediction.is_unknown() {
        true => format!("unknown - nearest: {top}"),
        false => format!("top: {top}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xrvlm_runtime::classifier::ClassScore;

    #[test]
    fn a_stem_met_again_gets_a_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = SheetFolder::create(&dir.path().join("maps")).unwrap();
        assert!(dir.path().join("maps").is_dir());
        let names: Vec<PathBuf> = ["a/x.jpg", "b/x.png", "y.jpg", "c/x.jpg"]
            .iter()
            .map(|p| folder.name_for(Path::new(p)))
            .collect();
        let files: Vec<String> = names
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["x.png", "x.2.png", "y.png", "x.3.png"]);
    }

    #[test]
    fn the_title_names_the_top_class_and_its_probability() {
        let prediction = Prediction {
            top: vec![ClassScore {
                index: 3,
                label: "twobar_shrike".into(),
                probability: 0.9731,
            }],
            logits: vec![0.0; 4],
            open_world: None,
            taxa: vec![],
        };
        assert_eq!(sheet_title(&prediction), "top: twobar_shrike 97.3%");
    }
}
