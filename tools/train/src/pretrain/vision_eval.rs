//! Scores a `pretrain-vision` checkpoint's species head on a synth directory: overall, by day,
//! by night (infrared, no colour) and per species, so that a ceiling below its target says where
//! the errors are.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, D};
use serde::Serialize;

use super::captions::{SynthSet, BLANK};
use super::pairs::load_images;
use super::probe::image_features;
use super::supervised::{HEADS_FILE, REPORT_FILE};
use super::PretrainError;
use crate::clip::open_clip::{OpenClipConfig, CONFIG_FILE, MODEL_FILE};
use crate::clip::resnet::ResNetTower;
use crate::clip::Weights;

/// Correct frames out of all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    /// Frames classified right.
    pub correct: usize,
    /// Frames scored.
    pub frames: usize,
}

impl Score {
    fn add(&mut self, right: bool) {
        self.correct += usize::from(right);
        self.frames += 1;
    }

    /// `correct / frames` (0 for none).
    pub fn top1(&self) -> f64 {
        self.correct as f64 / self.frames.max(1) as f64
    }
}

/// Species top-1 split by lighting and class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// Every frame of the checkpoint's classes.
    pub all: Score,
    /// Day frames.
    pub day: Score,
    /// Night (infrared) frames.
    pub night: Score,
    /// Per class.
    pub per_class: BTreeMap<String, Score>,
}

fn file_err(path: &Path, msg: impl Into<String>) -> PretrainError {
    PretrainError::File {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, PretrainError> {
    let text = std::fs::read_to_string(path).map_err(PretrainError::io(path))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("not valid JSON: {e}")))
}

/// The image tower of the open_clip checkpoint in `dir`, frozen.
pub fn load_tower(dir: &Path) -> Result<ResNetTower, PretrainError> {
    let config = OpenClipConfig::load(&dir.join(CONFIG_FILE))?.vision;
    let weights = Weights::load(&dir.join(MODEL_FILE), &Device::Cpu)?;
    Ok(ResNetTower::new(&weights, &config)?)
}

/// Scores the checkpoint in `dir` on the frames of `data` whose class it knows.
pub fn evaluate_checkpoint(dir: &Path, data: &Path) -> Result<Breakdown, PretrainError> {
    let dev = Device::Cpu;
    let tower = load_tower(dir)?;
    let heads_path = dir.join(HEADS_FILE);
    let heads = candle_core::safetensors::load(&heads_path, &dev)
        .map_err(|e| file_err(&heads_path, e.to_string()))?;
    let head = |name: &str| {
        heads
            .get(name)
            .cloned()
            .ok_or_else(|| file_err(&heads_path, format!("tensor {name} is missing")))
    };
    let (weight, bias) = (head("species.weight")?, head("species.bias")?);
    let report_path = dir.join(REPORT_FILE);
    let classes: Vec<String> = read_json(&report_path)?["classes"]["species"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| file_err(&report_path, "classes.species is missing"))?;
    let set = SynthSet::load(data)?;
    let mut out = Breakdown::default();
    let known: Vec<_> = set
        .records
        .iter()
        .filter_map(|r| {
            let name = if r.has_animal() {
                r.species.as_str()
            } else {
                BLANK
            };
            classes.iter().position(|c| c == name).map(|i| (r, i))
        })
        .collect();
    for chunk in known.chunks(128) {
        let records: Vec<_> = chunk.iter().map(|(r, _)| *r).collect();
        let pred = image_features(&tower, &load_images(&set, &records)?)?
            .matmul(&weight.t()?)?
            .broadcast_add(&bias)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        for ((r, truth), p) in chunk.iter().zip(pred) {
            let right = p as usize == *truth;
            out.all.add(right);
            if r.night {
                &mut out.night
            } else {
                &mut out.day
            }
            .add(right);
            out.per_class
                .entry(classes[*truth].clone())
                .or_default()
                .add(right);
        }
    }
    Ok(out)
}
