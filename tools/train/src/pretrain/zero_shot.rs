//! Zero-shot species recognition, CLIP's way: an image is classified among a set of species by
//! the cosine of its image feature with the text feature of each species' `description`.
//!
//! Run on species never seen in pre-training (held out), it measures whether the towers learned
//! the parts and attributes the descriptions name rather than the species themselves; on the
//! pre-training species it measures how well they were learned. Images use the evaluation
//! preprocessing (resize, centre crop), no augmentation.

use candle_core::{Device, Tensor, D};
use image::RgbImage;
use serde::Serialize;
use xrvlm_runtime::preprocess::Preprocess;

use super::captions::Species;
use super::loss::l2_normalize;
use super::PretrainError;
use crate::clip::{ClipTokenizer, ImageTower, TextTower};

/// Images per forward pass.
const EVAL_BATCH: usize = 64;

/// Images to classify among some species.
pub struct Task {
    /// Name in reports (`held_out`, `seen`, `all`).
    pub name: String,
    /// The candidate species.
    pub classes: Vec<Species>,
    /// The images.
    pub images: Vec<RgbImage>,
    /// Index into `classes` of each image's species.
    pub labels: Vec<usize>,
}

/// Accuracy on one species.
#[derive(Debug, Clone, Serialize)]
pub struct ClassResult {
    /// Species name.
    pub name: String,
    /// Images of it.
    pub images: usize,
    /// Of those, classified correctly.
    pub correct: usize,
}

/// The outcome of a [`Task`].
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// The task's name.
    pub name: String,
    /// Images classified.
    pub images: usize,
    /// Correctly classified images.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// Accuracy of a uniform guess, `1 / classes`.
    pub chance: f64,
    /// Per species, in class order.
    pub per_class: Vec<ClassResult>,
}

/// The two towers and the tokenizer a task runs with.
pub struct Towers<'a> {
    /// Image tower.
    pub vision: &'a ImageTower,
    /// Text tower.
    pub text: &'a TextTower,
    /// Tokenizer of the text tower.
    pub tokenizer: &'a ClipTokenizer,
}

impl Towers<'_> {
    /// L2-normalised text features `(C, D)` of the species' descriptions.
    pub fn class_features(
        &self,
        classes: &[Species],
        device: &Device,
    ) -> Result<Tensor, PretrainError> {
        let texts: Vec<String> = classes.iter().map(|s| s.description.clone()).collect();
        let ids = self.tokenizer.encode_batch(&texts)?;
        let ids = self.tokenizer.pad_to_tensor(&ids, device)?;
        Ok(l2_normalize(&self.text.text_features(&ids)?.detach())?)
    }

    /// L2-normalised image features `(N, D)`, preprocessed for evaluation.
    pub fn image_features(
        &self,
        images: &[RgbImage],
        device: &Device,
    ) -> Result<Tensor, PretrainError> {
        let size = self.vision.image_size();
        let pre = Preprocess::for_image_size(size as u32);
        let mut rows = Vec::new();
        for chunk in images.chunks(EVAL_BATCH) {
            let mut flat = Vec::with_capacity(chunk.len() * pre.output_len());
            for img in chunk {
                flat.extend(
                    pre.apply(img)
                        .map_err(|e| PretrainError::Config(format!("evaluation image: {e}")))?,
                );
            }
            let pixels = Tensor::from_vec(flat, (chunk.len(), 3, size, size), device)?;
            rows.push(self.vision.image_features(&pixels)?.detach());
        }
        Ok(l2_normalize(&Tensor::cat(&rows, 0)?)?)
    }

    /// Classifies the task's images and scores them.
    pub fn run(&self, task: &Task, device: &Device) -> Result<TaskResult, PretrainError> {
        if task.images.is_empty() || task.classes.is_empty() {
            return Err(PretrainError::Config(format!(
                "zero-shot task {} has no images or no classes",
                task.name
            )));
        }
        let text = self.class_features(&task.classes, device)?;
        let image = self.image_features(&task.images, device)?;
        let predicted = image
            .matmul(&text.t()?)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        Ok(score(task, &predicted))
    }
}

/// Scores predictions (class indices) against the task's labels.
pub fn score(task: &Task, predicted: &[u32]) -> TaskResult {
    let mut per_class: Vec<ClassResult> = task
        .classes
        .iter()
        .map(|s| ClassResult {
            name: s.name.clone(),
            images: 0,
            correct: 0,
        })
        .collect();
    for (&label, &p) in task.labels.iter().zip(predicted) {
        per_class[label].images += 1;
        if p as usize == label {
            per_class[label].correct += 1;
        }
    }
    let images = task.labels.len();
    let correct: usize = per_class.iter().map(|c| c.correct).sum();
    TaskResult {
        name: task.name.clone(),
        images,
        correct,
        accuracy: correct as f64 / images.max(1) as f64,
        chance: 1.0 / task.classes.len().max(1) as f64,
        per_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_per_class() {
        let sp = |n: &str| Species {
            name: n.into(),
            description: "d".into(),
            attributes: Default::default(),
        };
        let task = Task {
            name: "t".into(),
            classes: vec![sp("a"), sp("b")],
            images: Vec::new(),
            labels: vec![0, 0, 1, 1],
        };
        let r = score(&task, &[0, 1, 1, 1]);
        assert_eq!((r.images, r.correct), (4, 3));
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.chance, 0.5);
        assert_eq!(r.per_class[0].correct, 1);
        assert_eq!(r.per_class[1].correct, 2);
    }
}
