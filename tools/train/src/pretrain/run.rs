//! A whole pre-training run, from a synth directory to a checkpoint and its zero-shot report
//! (the steps are listed in the [module doc](super)).

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use xrvlm_runtime::preprocess::Preprocess;

use super::captions::{CaptionRecord, Species, SynthSet};
use super::config::PretrainConfig;
use super::export::{self, MODEL_FILE};
use super::locked::LockedImage;
use super::pairs::Pairs;
use super::split::{split, task, Split};
use super::trainer::{Schedule, Trainer};
use super::vocab::{build_tokenizer, multi_token_words, PLACEHOLDER};
use super::zero_shot::{Task, TaskResult, Towers};
use super::{init, PretrainError};
use crate::clip::tokenizer::EOT;
use crate::clip::{open_clip, Clip, ClipConfig};
use crate::data::augment::Augment;
use crate::train::checkpoint::write_atomically;
use crate::train::curves::write_curves;
use crate::train::metrics_log::{MetricsLog, Record, RecordKind};

/// MPP's learned context tokens per prompt (`xrvlm-method.md` §1, L_ctx): the text context must
/// hold that many `X`, a species name and a full stop.
pub const MPP_CONTEXT_TOKENS: usize = 16;
/// Context lengths are rounded up to a multiple of this.
const CONTEXT_MULTIPLE: usize = 8;
/// CLIP's context length, the most any text tower here gets.
const MAX_CONTEXT: usize = 77;
/// The zero-shot report in the output directory.
pub const ZERO_SHOT_FILE: &str = "zero_shot.json";
/// The folder of training logs in the output directory.
pub const LOG_DIR: &str = "pretrain";
/// The metrics log inside [`LOG_DIR`].
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Zero-shot accuracies of the written checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ZeroShotReport {
    /// Images of held-out species among the held-out species.
    pub held_out: Option<TaskResult>,
    /// Held-back (or `--eval`) images of pre-training species among those species.
    pub seen: Option<TaskResult>,
    /// Both image sets among every species.
    pub all: Option<TaskResult>,
}

/// What a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainReport {
    /// The model's configuration.
    pub config: ClipConfig,
    /// Trainable scalars.
    pub parameters: usize,
    /// Pre-training pairs.
    pub pairs: usize,
    /// Held-out species names.
    pub held_out: Vec<String>,
    /// Optimiser steps.
    pub steps: usize,
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f64>,
    /// The final `logit_scale`.
    pub logit_scale: f32,
    /// Seconds of training (optimiser steps and periodic evaluations).
    pub train_seconds: f64,
    /// Seconds of the whole run.
    pub total_seconds: f64,
    /// Zero-shot accuracies of the written checkpoint.
    pub zero_shot: ZeroShotReport,
}

/// The zero-shot tasks of a run.
struct Tasks {
    held_out: Option<Task>,
    seen: Option<Task>,
    all: Option<Task>,
}

/// Runs pre-training as `cfg` says, writing the checkpoint and reports to `cfg.out`.
pub fn pretrain(cfg: &PretrainConfig, device: &Device) -> Result<PretrainReport, PretrainError> {
    let started = Instant::now();
    cfg.validate()?;
    prepare_out(cfg)?;
    let data = SynthSet::load(&cfg.data)?;
    let eval_set = cfg.eval.as_deref().map(SynthSet::load).transpose()?;
    let per_species = if eval_set.is_some() {
        0
    } else {
        cfg.eval_per_species
    };
    let split = split(&data, &cfg.holdout, per_species)?;
    let locked = cfg
        .lock_image
        .as_deref()
        .map(|dir| LockedImage::load(dir, device))
        .transpose()?;
    let config = write_tokenizer(cfg, &split, &data.species, locked.as_ref())?;
    let params = init::init_params(&config, cfg.seed, device)?;
    init::set_temperature(&params, cfg.temperature)?;
    let weights = match &locked {
        Some(image) => image.weights(&params, &cfg.out.join(open_clip::MODEL_FILE)),
        None => init::tower_weights(&params, &cfg.out.join(MODEL_FILE)),
    };
    let clip = Clip::from_weights(config.clone(), weights, &cfg.out)?;
    let train: Vec<&CaptionRecord> = split.train.iter().collect();
    let pairs = Pairs::load(&data, &train, clip.tokenizer()?)?;
    let tasks = tasks(&data, eval_set.as_ref(), &split)?;
    let pre = Preprocess::for_image_size(config.vision.image_size() as u32);
    let augment = Augment {
        scale: (cfg.min_crop_scale, 1.0),
        // CLIP trains without flips; captions may name sides.
        flip: false,
        ..Augment::from_preprocess(&pre)
    };
    let mut trainer = Trainer::new(
        clip,
        &params,
        cfg.weight_decay,
        augment,
        cfg.clause_dropout,
        device,
    )?;
    let total_steps = cfg.epochs * pairs.steps_per_epoch(cfg.batch_size);
    let schedule = Schedule {
        batch_size: cfg.batch_size,
        total_steps,
        warmup: cfg.warmup_steps.min(total_steps / 2),
        peak_lr: cfg.lr,
        seed: cfg.seed,
    };
    let train_started = Instant::now();
    let mut log = RunLog::open(&cfg.out)?;
    let epoch_losses = train_epochs(
        cfg,
        &mut trainer,
        &pairs,
        &schedule,
        &tasks,
        &mut log,
        device,
    )?;
    let train_seconds = train_started.elapsed().as_secs_f64();
    match &locked {
        Some(image) => image.write_checkpoint(&cfg.out, &config, &params, cfg.half_weights)?,
        None => export::write_model(&cfg.out, &config, &params, cfg.half_weights)?,
    }
    let zero_shot = evaluate_checkpoint(&cfg.out, &tasks, device)?;
    if let Some(h) = &zero_shot.held_out {
        let lr = log.records.last().map_or(0.0, |r| r.lr);
        log.append(eval_record(
            cfg.epochs - 1,
            trainer.step,
            lr,
            h.accuracy,
            0.0,
        ))?;
    }
    write_json(&cfg.out.join(ZERO_SHOT_FILE), &zero_shot)?;
    let report = PretrainReport {
        config,
        parameters: params.num_values(),
        pairs: pairs.len(),
        held_out: split.held_out.iter().map(|s| s.name.clone()).collect(),
        steps: trainer.step,
        epoch_losses,
        logit_scale: trainer.logit_scale()?,
        train_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        zero_shot,
    };
    let run = serde_json::json!({"settings": cfg, "report": &report});
    write_json(&cfg.out.join(LOG_DIR).join("run.json"), &run)?;
    log.curves(&cfg.out)?;
    Ok(report)
}

/// Refuses to overwrite a checkpoint (unless asked) and starts a fresh log folder.
fn prepare_out(cfg: &PretrainConfig) -> Result<(), PretrainError> {
    let file = match cfg.lock_image {
        Some(_) => open_clip::MODEL_FILE,
        None => MODEL_FILE,
    };
    let model = cfg.out.join(file);
    if model.exists() && !cfg.overwrite {
        return Err(PretrainError::Config(format!(
            "{} already exists; choose another --out or pass --overwrite",
            model.display()
        )));
    }
    let logs = cfg.out.join(LOG_DIR);
    std::fs::create_dir_all(&logs).map_err(PretrainError::io(&logs))?;
    let metrics = logs.join(METRICS_FILE);
    if metrics.exists() {
        // No resume: a new run starts a new log.
        std::fs::remove_file(&metrics).map_err(PretrainError::io(&metrics))?;
    }
    Ok(())
}

/// The texts the tokenizer must cover: pre-training captions, every description, every species
/// name and MPP's placeholder.
fn corpus(split: &Split, species: &[Species]) -> Vec<String> {
    let mut texts: Vec<String> = split.train.iter().map(|r| r.caption.clone()).collect();
    texts.extend(species.iter().map(|s| s.description.clone()));
    texts.extend(species.iter().map(Species::words));
    texts.push(PLACEHOLDER.to_string());
    texts
}

/// An MPP prompt of the longest kind: `X X … X Name.`
fn mpp_prompt(s: &Species) -> String {
    format!(
        "{}{}.",
        format!("{PLACEHOLDER} ").repeat(MPP_CONTEXT_TOKENS),
        s.words()
    )
}

/// Builds the tokenizer, writes it to the output directory and returns the model's config (the
/// locked image tower's, when there is one, with a text tower of `cfg.size`).
fn write_tokenizer(
    cfg: &PretrainConfig,
    split: &Split,
    species: &[Species],
    locked: Option<&LockedImage>,
) -> Result<ClipConfig, PretrainError> {
    let texts = corpus(split, species);
    let tokenizer = build_tokenizer(&texts)?;
    let split_words = multi_token_words(&tokenizer, &texts)?;
    if !split_words.is_empty() {
        return Err(PretrainError::Tokenizer(format!(
            "words still split into several tokens: {split_words:?}"
        )));
    }
    let mut longest = 0;
    let prompts = species.iter().map(mpp_prompt);
    for text in texts.iter().cloned().chain(prompts) {
        let enc = tokenizer
            .encode(text.as_str(), true)
            .map_err(|e| PretrainError::Tokenizer(e.to_string()))?;
        longest = longest.max(enc.len());
    }
    let context = longest.div_ceil(CONTEXT_MULTIPLE) * CONTEXT_MULTIPLE;
    let context = context.min(MAX_CONTEXT);
    let eot = tokenizer
        .token_to_id(EOT)
        .ok_or_else(|| PretrainError::Tokenizer(format!("no {EOT} token")))?;
    let vocab = tokenizer.get_vocab_size(true);
    let config = match locked {
        Some(image) => image.clip_config(cfg.size.text_config(vocab, context, eot)?),
        None => cfg.size.clip_config(vocab, context, eot)?,
    };
    export::write_tokenizer(&cfg.out, &tokenizer, context)?;
    Ok(config)
}

/// The held-out, seen and all-species tasks (images from `eval` when given).
fn tasks(data: &SynthSet, eval: Option<&SynthSet>, split: &Split) -> Result<Tasks, PretrainError> {
    let (held_out, seen) = match eval {
        Some(e) => (
            task("held_out", e, &e.records, &split.held_out)?,
            task("seen", e, &e.records, &split.seen)?,
        ),
        None => (
            task("held_out", data, &data.records, &split.held_out)?,
            task("seen", data, &split.held_back, &split.seen)?,
        ),
    };
    let all = merge_tasks("all", &data.species, [held_out.as_ref(), seen.as_ref()]);
    Ok(Tasks {
        held_out,
        seen,
        all,
    })
}

/// The images of several tasks classified among `classes` (labels remapped by name).
fn merge_tasks<'a>(
    name: &str,
    classes: &[Species],
    parts: impl IntoIterator<Item = Option<&'a Task>>,
) -> Option<Task> {
    let mut merged = Task {
        name: name.to_string(),
        classes: classes.to_vec(),
        images: Vec::new(),
        labels: Vec::new(),
    };
    for part in parts.into_iter().flatten() {
        for (img, &label) in part.images.iter().zip(&part.labels) {
            let species = &part.classes[label].name;
            if let Some(l) = classes.iter().position(|c| &c.name == species) {
                merged.images.push(img.clone());
                merged.labels.push(l);
            }
        }
    }
    (!merged.images.is_empty()).then_some(merged)
}

/// The metrics log and its records (for the curves).
struct RunLog {
    log: MetricsLog,
    records: Vec<Record>,
}

impl RunLog {
    fn open(out: &Path) -> Result<Self, PretrainError> {
        Ok(Self {
            log: MetricsLog::open(out.join(LOG_DIR).join(METRICS_FILE))?,
            records: Vec::new(),
        })
    }

    fn append(&mut self, record: Record) -> Result<(), PretrainError> {
        self.log.append(&record)?;
        self.records.push(record);
        Ok(())
    }

    fn curves(&self, out: &Path) -> Result<(), PretrainError> {
        let title = "xrvlm-train pretrain: contrastive loss; accuracy = held-out zero-shot";
        write_curves(&self.records, &out.join(LOG_DIR).join("curves.png"), title)?;
        Ok(())
    }
}

/// An evaluation record whose top-1 is the held-out zero-shot accuracy.
fn eval_record(epoch: usize, step: usize, lr: f64, accuracy: f64, seconds: f64) -> Record {
    Record {
        kind: RecordKind::Eval,
        epoch,
        step,
        lr,
        loss: f64::NAN,
        top1: Some(accuracy),
        top5: None,
        seconds,
    }
}

fn progress_bar(show: bool, steps: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template(
        "{bar:30} {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Every epoch, logged; held-out zero-shot accuracy every `cfg.eval_every` epochs but the last
/// (the last is measured on the written checkpoint).
fn train_epochs(
    cfg: &PretrainConfig,
    trainer: &mut Trainer,
    pairs: &Pairs,
    schedule: &Schedule,
    tasks: &Tasks,
    log: &mut RunLog,
    device: &Device,
) -> Result<Vec<f64>, PretrainError> {
    let bar = progress_bar(cfg.progress, schedule.total_steps);
    let mut losses = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        let t = Instant::now();
        let (loss, lr) = trainer.epoch(pairs, schedule, epoch, &bar)?;
        log.append(Record::train(
            epoch,
            trainer.step,
            lr,
            loss,
            t.elapsed().as_secs_f64(),
        ))?;
        losses.push(loss);
        let due = cfg.eval_every > 0 && (epoch + 1) % cfg.eval_every == 0;
        if let (true, true, Some(held_out)) = (due, epoch + 1 < cfg.epochs, &tasks.held_out) {
            let t = Instant::now();
            let clip = &trainer.clip;
            let towers = Towers {
                vision: &clip.vision,
                text: &clip.text,
                tokenizer: clip.tokenizer()?,
            };
            let r = towers.run(held_out, device)?;
            let secs = t.elapsed().as_secs_f64();
            log.append(eval_record(epoch, trainer.step, lr, r.accuracy, secs))?;
            bar.println(format!(
                "epoch {}: loss {loss:.4}, held-out zero-shot {:.1} %",
                epoch + 1,
                100.0 * r.accuracy
            ));
        }
    }
    bar.finish_and_clear();
    Ok(losses)
}

/// Loads the written checkpoint back, as any user would, and runs the zero-shot tasks on it.
fn evaluate_checkpoint(
    out: &Path,
    tasks: &Tasks,
    device: &Device,
) -> Result<ZeroShotReport, PretrainError> {
    let clip = Clip::load(out, device)?;
    let towers = Towers {
        vision: &clip.vision,
        text: &clip.text,
        tokenizer: clip.tokenizer()?,
    };
    let run = |t: &Option<Task>| t.as_ref().map(|t| towers.run(t, device)).transpose();
    Ok(ZeroShotReport {
        held_out: run(&tasks.held_out)?,
        seen: run(&tasks.seen)?,
        all: run(&tasks.all)?,
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), PretrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| PretrainError::File {
        path: path.to_path_buf(),
        msg: format!("cannot serialise: {e}"),
    })?;
    write_atomically(path, format!("{text}\n").as_bytes()).map_err(PretrainError::io(path))
}
