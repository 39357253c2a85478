//! The training loop (§6): SGD with momentum over the head's parameters, the per-epoch schedule,
//! cross-entropy on the logits, a checkpoint after every epoch, evaluation, the JSONL metrics log
//! and the curves. A run killed at any moment resumes from its last checkpoint and continues
//! exactly where it stopped: data order and augmentation are keyed by (seed, epoch, sample), so
//! the resumed epochs see the same batches as an uninterrupted run.
//!
//! Output directory layout: `checkpoint.safetensors` (latest), `metrics.jsonl`, `curves.png`,
//! `eval.json` and `eval.md` (final evaluation), `failures.txt` (images that could not be read).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use xrvlm_runtime::preprocess::Preprocess;

use super::checkpoint::{self, Checkpoint};
use super::curves::write_curves;
use super::evaluate::{evaluate, EvalOutcome};
use super::metrics_log::{read_records, truncate_after_epoch, MetricsLog, Record};
use super::run::{resolve, RunConfig, Splits};
use super::sgd::Sgd;
use crate::clip::Clip;
use crate::data::augment::Augment;
use crate::data::loader::{labels_tensor, to_tensor, LoadFailure, Loader, Transform};
use crate::data::Dataset;
use crate::model::{HeadKind, Model};

/// The checkpoint file inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// A run in progress.
pub struct Trainer {
    run: RunConfig,
    model: Model,
    sgd: Sgd,
    splits: Splits,
    preprocess: Preprocess,
    out: PathBuf,
    device: Device,
    epochs_done: usize,
    failed: BTreeMap<PathBuf, String>,
    progress: bool,
}

/// What a finished run reports.
pub struct Summary {
    /// Training loss of each epoch run in this process.
    pub losses: Vec<f64>,
    /// The final evaluation, if there was an evaluation set.
    pub eval: Option<EvalOutcome>,
    /// Images that could not be read.
    pub failures: usize,
}

/// Loads the model a run configuration describes (fresh parameters).
pub fn build_model(run: &RunConfig, device: &Device) -> anyhow::Result<Model> {
    let clip = Clip::load(&run.clip, device)
        .with_context(|| format!("loading CLIP checkpoint {}", run.clip.display()))?;
    let model = Model::new(
        clip,
        run.classes.clone(),
        run.head.clone(),
        device,
        run.precision.dtype(),
    )?;
    Ok(model)
}

/// Restores the parameters and buffers of a checkpoint into a model.
pub fn restore(model: &Model, ck: &Checkpoint<RunConfig>, path: &Path) -> anyhow::Result<()> {
    let what = path.display().to_string();
    model.params.load(&ck.tensors, "param.", &what)?;
    model.buffers.load(&ck.tensors, "buffer.", &what)?;
    Ok(())
}

impl Trainer {
    /// Starts a new run in `out` (which must not hold a checkpoint already).
    pub fn new(
        mut run: RunConfig,
        out: &Path,
        device: &Device,
        progress: bool,
    ) -> anyhow::Result<Self> {
        let ck = out.join(CHECKPOINT_FILE);
        if ck.exists() {
            bail!(
                "{} already exists; pass --resume to continue that run or choose another --out",
                ck.display()
            );
        }
        let splits = resolve(&run.data)?;
        run.classes = splits.train.classes.clone();
        run.train_fingerprint = splits.train.fingerprint();
        let model = build_model(&run, device)?;
        let sgd = Sgd::new(model.trainable(), run.sgd.clone())?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        Self::assemble(run, model, sgd, splits, out, device, 0, progress)
    }

    /// Resumes the run whose checkpoint is in `out`.
    pub fn resume(out: &Path, device: &Device, progress: bool) -> anyhow::Result<Self> {
        let path = out.join(CHECKPOINT_FILE);
        let ck: Checkpoint<RunConfig> = checkpoint::load(&path, device)?;
        let splits = resolve(&ck.run.data)?;
        if splits.train.fingerprint() != ck.run.train_fingerprint {
            bail!(
                "the training images under {:?} changed since {} was written; a resume must see the same data",
                ck.run.data.source,
                path.display()
            );
        }
        let model = build_model(&ck.run, device)?;
        restore(&model, &ck, &path)?;
        let mut sgd = Sgd::new(model.trainable(), ck.run.sgd.clone())?;
        let optim: HashMap<String, Tensor> = ck
            .tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("optim.").map(|n| (n.to_string(), v.clone())))
            .collect();
        sgd.load_state(&optim)?;
        let metrics = out.join(METRICS_FILE);
        if metrics.exists() && ck.epochs_done > 0 {
            truncate_after_epoch(&metrics, ck.epochs_done - 1)?;
        }
        Self::assemble(
            ck.run,
            model,
            sgd,
            splits,
            out,
            device,
            ck.epochs_done,
            progress,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        run: RunConfig,
        model: Model,
        sgd: Sgd,
        splits: Splits,
        out: &Path,
        device: &Device,
        epochs_done: usize,
        progress: bool,
    ) -> anyhow::Result<Self> {
        let preprocess = Preprocess::for_image_size(model.clip.config.vision.image_size() as u32);
        preprocess.validate()?;
        Ok(Self {
            run,
            model,
            sgd,
            splits,
            preprocess,
            out: out.to_path_buf(),
            device: device.clone(),
            epochs_done,
            failed: BTreeMap::new(),
            progress,
        })
    }

    /// The run's configuration.
    pub fn run_config(&self) -> &RunConfig {
        &self.run
    }

    /// The model being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Notes about the data (short classes, skipped annotations).
    pub fn notes(&self) -> &[String] {
        &self.splits.notes
    }

    /// Number of training images.
    pub fn train_size(&self) -> usize {
        self.splits.train.len()
    }

    /// Epochs already completed (non-zero after a resume).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Trains the remaining epochs, evaluates, and writes the run's outputs.
    pub fn run(&mut self) -> anyhow::Result<Summary> {
        let mut log = MetricsLog::open(self.out.join(METRICS_FILE))?;
        let trainable = self.model.config.kind != HeadKind::ZeroShot;
        let batches =
            train_loader(&self.run, &self.splits.train, &self.preprocess, 0).len_batches();
        let pending = if trainable {
            self.run.epochs - self.epochs_done.min(self.run.epochs)
        } else {
            0
        };
        let bar = self.bar((pending * batches) as u64);
        let mut losses = Vec::new();
        for epoch in self.epochs_done..if trainable { self.run.epochs } else { 0 } {
            let started = Instant::now();
            let lr = self.run.schedule.lr(self.run.sgd.lr, epoch);
            let loss = self.train_epoch(epoch, lr, &bar)?;
            let step = (epoch + 1) * batches;
            log.append(&Record::train(
                epoch,
                step,
                lr,
                loss,
                started.elapsed().as_secs_f64(),
            ))?;
            losses.push(loss);
            let last = epoch + 1 == self.run.epochs;
            if !last && self.run.eval_every > 0 && (epoch + 1) % self.run.eval_every == 0 {
                self.eval_and_log(&mut log, epoch, step, lr, &bar)?;
            }
            self.save_checkpoint(epoch + 1)?;
            self.epochs_done = epoch + 1;
            self.write_curves()?;
        }
        bar.finish_and_clear();
        let epoch = self.run.epochs.saturating_sub(1);
        let lr = self.run.schedule.lr(self.run.sgd.lr, epoch);
        let eval = self.eval_and_log(&mut log, epoch, self.run.epochs * batches, lr, &bar)?;
        if !trainable {
            self.save_checkpoint(0)?;
        }
        self.write_curves()?;
        self.write_failures()?;
        if let Some(outcome) = &eval {
            self.write_eval(outcome)?;
        }
        Ok(Summary {
            losses,
            eval,
            failures: self.failed.len(),
        })
    }

    fn bar(&self, len: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} batches {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    }

    fn train_epoch(&mut self, epoch: usize, lr: f64, bar: &ProgressBar) -> anyhow::Result<f64> {
        let loader = train_loader(&self.run, &self.splits.train, &self.preprocess, epoch);
        let (mut sum, mut count) = (0.0, 0usize);
        let mut failures = Vec::new();
        for batch in &loader {
            bar.inc(1);
            failures.extend(batch.failures.iter().cloned());
            // Batch norm needs two samples to estimate a variance (PyTorch refuses one too).
            if batch.len() < 2 {
                continue;
            }
            let pixels = to_tensor(&batch, self.preprocess.crop, &self.device)?;
            let labels = labels_tensor(&batch, &self.device)?;
            let logits = self.model.logits(&pixels, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                bail!("training diverged at epoch {epoch}: loss is {value}; lower --lr");
            }
            let grads = loss.backward()?;
            self.sgd.step(&grads, lr)?;
            sum += value * batch.len() as f64;
            count += batch.len();
            bar.set_message(format!("epoch {} loss {value:.4}", epoch + 1));
        }
        self.record_failures(failures, bar);
        if count == 0 {
            bail!(
                "epoch {epoch}: no batch of at least 2 readable images in {} ({} images)",
                self.splits.train.name,
                self.splits.train.len()
            );
        }
        Ok(sum / count as f64)
    }

    fn record_failures(&mut self, failures: Vec<LoadFailure>, bar: &ProgressBar) {
        for f in failures {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.failed.entry(f.path) {
                bar.suspend(|| {
                    eprintln!(
                        "warning: skipped unreadable image {}: {}",
                        slot.key().display(),
                        f.error
                    )
                });
                slot.insert(f.error);
            }
        }
    }

    fn eval_and_log(
        &mut self,
        log: &mut MetricsLog,
        epoch: usize,
        step: usize,
        lr: f64,
        bar: &ProgressBar,
    ) -> anyhow::Result<Option<EvalOutcome>> {
        let Some(ds) = self.splits.eval.as_ref() else {
            return Ok(None);
        };
        let started = Instant::now();
        let outcome = evaluate(
            &self.model,
            ds,
            &self.preprocess,
            self.run.batch_size,
            &self.device,
            |_| {},
        )?;
        log.append(&Record::eval(
            epoch,
            step,
            lr,
            &outcome.evaluation,
            started.elapsed().as_secs_f64(),
        ))?;
        self.record_failures(outcome.failures.clone(), bar);
        Ok(Some(outcome))
    }

    /// Every tensor a checkpoint holds: parameters, buffers and optimiser state.
    fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let named = |prefix: &str, vars: Vec<(String, candle_core::Var)>| {
            vars.into_iter()
                .map(|(n, v)| (format!("{prefix}{n}"), v.as_tensor().clone()))
                .collect::<Vec<_>>()
        };
        let mut all = named("param.", self.model.params.named());
        all.extend(named("buffer.", self.model.buffers.named()));
        all.extend(
            self.sgd
                .state()
                .into_iter()
                .map(|(n, t)| (format!("optim.{n}"), t)),
        );
        all
    }

    fn save_checkpoint(&self, epochs_done: usize) -> anyhow::Result<()> {
        checkpoint::save(
            &self.out.join(CHECKPOINT_FILE),
            &self.run,
            epochs_done,
            &self.checkpoint_tensors(),
        )?;
        Ok(())
    }

    fn write_curves(&self) -> anyhow::Result<()> {
        let (records, _) = read_records(self.out.join(METRICS_FILE))?;
        let title = format!("{:?} on {}", self.run.head.kind, self.splits.train.name);
        write_curves(&records, &self.out.join("curves.png"), &title)?;
        Ok(())
    }

    fn write_failures(&self) -> anyhow::Result<()> {
        let path = self.out.join("failures.txt");
        if self.failed.is_empty() {
            if path.exists() {
                std::fs::remove_file(&path)?;
            }
            return Ok(());
        }
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        for (p, e) in &self.failed {
            writeln!(f, "{}\t{e}", p.display())?;
        }
        Ok(())
    }

    fn write_eval(&self, outcome: &EvalOutcome) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(&outcome.evaluation)?;
        std::fs::write(self.out.join("eval.json"), json)?;
        std::fs::write(self.out.join("eval.md"), outcome.evaluation.to_markdown())?;
        Ok(())
    }
}

/// The training batches of `epoch`: augmented (or eval-preprocessed) and shuffled, keyed by the
/// run's seed and the epoch.
fn train_loader<'a>(
    run: &RunConfig,
    ds: &'a Dataset,
    pre: &Preprocess,
    epoch: usize,
) -> Loader<'a> {
    let transform = if run.augment {
        Transform::Train {
            augment: Augment::from_preprocess(pre),
            seed: run.seed,
            epoch: epoch as u64,
        }
    } else {
        Transform::Eval(pre.clone())
    };
    Loader::new(ds, transform, run.batch_size, Some(run.seed), epoch as u64)
}

/// Loads a trained run's model (config + parameters) from its checkpoint file.
/// A relative backbone path is tried from the working directory first, then from the checkpoint's
/// directory, so a run directory can be moved together with its backbone.
pub fn load_trained(path: &Path, device: &Device) -> anyhow::Result<(RunConfig, Model)> {
    let mut ck: Checkpoint<RunConfig> = checkpoint::load(path, device)?;
    ck.run.clip = locate_backbone(&ck.run.clip, path);
    let model = build_model(&ck.run, device)?;
    restore(&model, &ck, path)?;
    Ok((ck.run, model))
}

fn locate_backbone(clip: &Path, checkpoint: &Path) -> PathBuf {
    if clip.is_relative() && !clip.exists() {
        if let Some(dir) = checkpoint.parent() {
            let beside = dir.join(clip);
            if beside.exists() {
                return beside;
            }
        }
    }
    clip.to_path_buf()
}

/// The evaluation set a run would use, for `xrvlm-train eval`.
pub fn eval_set(run: &RunConfig) -> anyhow::Result<Option<Dataset>> {
    Ok(resolve(&run.data)?.eval)
}
