//! `xrvlm-train train`: trains a head on a frozen CLIP checkpoint, or resumes a killed run with
//! `--resume --out DIR`. Defaults are the reference recipe of `xrvlm-method.md` §6 (M = P = 4,
//! 16 context tokens, SGD lr 2e-3 momentum 0.9 wd 1e-4, 100 epochs with 5 of warm-up, batch 64).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use crate::device::{self, DeviceChoice, Precision};
use crate::model::{HeadConfig, HeadKind};
use crate::train::run::{DataConfig, DataSource, RunConfig};
use crate::train::schedule::Schedule;
use crate::train::sgd::SgdConfig;
use crate::train::trainer::Trainer;

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run directory: checkpoint, metrics log, curves, evaluation.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint (all other settings come from it).
    #[arg(long)]
    pub resume: bool,
    /// Frozen CLIP checkpoint directory (HF layout).
    #[arg(long, required_unless_present = "resume")]
    pub clip: Option<PathBuf>,
    /// ImageFolder or CUB-200-2011 root.
    #[arg(long, conflicts_with = "coco_json")]
    pub data: Option<PathBuf>,
    /// COCO Camera Traps JSON (with --coco-images).
    #[arg(long, requires = "coco_images")]
    pub coco_json: Option<PathBuf>,
    /// Image root of the COCO Camera Traps file names.
    #[arg(long)]
    pub coco_images: Option<PathBuf>,
    /// Learn on the square crop of every box of the COCO Camera Traps file (cut by the rule
    /// `classify --detections` and the field loop use) instead of on whole images.
    #[arg(long, requires = "coco_json")]
    pub coco_boxes: bool,
    /// A separate ImageFolder to evaluate on.
    #[arg(long)]
    pub eval_folder: Option<PathBuf>,
    /// Images per class drawn from the training split (k-shot).
    #[arg(long)]
    pub shots: Option<usize>,
    /// Seed of the shot draw.
    #[arg(long, default_value_t = 1)]
    pub shot_seed: u64,
    /// Head: xrvlm, alignment (single-sim), vision-only, coop, zero-shot.
    #[arg(long, value_enum, default_value = "xrvlm")]
    pub head: HeadKind,
    /// Visual parts M.
    #[arg(long, default_value_t = 4)]
    pub parts: usize,
    /// Prompts per class P.
    #[arg(long, default_value_t = 4)]
    pub prompts: usize,
    /// Learned context tokens per prompt.
    #[arg(long, default_value_t = 16)]
    pub context_len: usize,
    /// CRM embedding D' (default D/2).
    #[arg(long)]
    pub crm_dim: Option<usize>,
    /// Hidden width H of CRM / vision-only MLPs.
    #[arg(long, default_value_t = 1024)]
    pub hidden: usize,
    /// Zero-shot template; {} is the class name.
    #[arg(long, default_value = "a photo of the {}")]
    pub template: String,
    /// Epochs.
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Linear warm-up epochs.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the evaluation preprocessing instead of random crops and flips.
    #[arg(long)]
    pub no_augment: bool,
    /// Evaluate every N epochs (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Tower precision (bf16 on CUDA only).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The run configuration these flags describe (classes and fingerprint filled in later).
    pub fn run_config(&self) -> anyhow::Result<RunConfig> {
        let source = match (&self.data, &self.coco_json, &self.coco_images) {
            (Some(root), None, _) => DataSource::Folder { root: root.clone() },
            (None, Some(json), Some(images)) => DataSource::CocoCameraTraps {
                json: json.clone(),
                images: images.clone(),
                boxes: self.coco_boxes,
            },
            _ => bail!("give the data: --data DIR, or --coco-json FILE --coco-images DIR"),
        };
        let Some(clip) = self.clip.clone() else {
            bail!("--clip DIR is required for a new run");
        };
        if self.warmup >= self.epochs && self.head != HeadKind::ZeroShot {
            bail!(
                "--warmup {} must be smaller than --epochs {}",
                self.warmup,
                self.epochs
            );
        }
        Ok(RunConfig {
            clip,
            head: HeadConfig {
                kind: self.head,
                parts: self.parts,
                prompts: self.prompts,
                context_len: self.context_len,
                crm_dim: self.crm_dim,
                hidden: self.hidden,
                template: self.template.clone(),
                seed: self.seed,
                ..HeadConfig::default()
            },
            data: DataConfig {
                source,
                shots: self.shots,
                shot_seed: self.shot_seed,
                eval_folder: self.eval_folder.clone(),
            },
            epochs: self.epochs,
            batch_size: self.batch_size,
            sgd: SgdConfig {
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
            },
            schedule: Schedule::linear_warmup_cosine(self.epochs, self.warmup),
            seed: self.seed,
            augment: !self.no_augment,
            eval_every: self.eval_every,
            precision: self.precision,
            classes: Vec::new(),
            train_fingerprint: String::new(),
        })
    }
}

/// Runs `train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut trainer = if args.resume {
        let ck = args.out.join(crate::train::trainer::CHECKPOINT_FILE);
        let precision = peek_precision(&ck)?;
        let device = device::open(args.device, precision)?;
        let t = Trainer::resume(&args.out, &device, !args.quiet)?;
        eprintln!(
            "resuming {} after epoch {}",
            args.out.display(),
            t.epochs_done()
        );
        t
    } else {
        let run = args.run_config()?;
        let device = device::open(args.device, run.precision)?;
        Trainer::new(run, &args.out, &device, !args.quiet)?
    };
    for note in trainer.notes() {
        eprintln!("note: {note}");
    }
    let cfg = trainer.run_config();
    eprintln!(
        "{:?} head, {} classes, {} training images, {} trainable values",
        cfg.head.kind,
        cfg.classes.len(),
        trainer.train_size(),
        trainer.model().params.num_values()
    );
    let summary = trainer.run()?;
    if let (Some(first), Some(last)) = (summary.losses.first(), summary.losses.last()) {
        eprintln!(
            "training loss {first:.4} -> {last:.4} over {} epochs",
            summary.losses.len()
        );
    }
    match &summary.eval {
        Some(e) => println!(
            "top-1 {:.2} %  top-5 {:.2} %  ({} images) -> {}",
            100.0 * e.evaluation.top1,
            100.0 * e.evaluation.top5,
            e.evaluation.count,
            args.out.join("eval.md").display()
        ),
        None => println!("no evaluation set; checkpoint in {}", args.out.display()),
    }
    if summary.failures > 0 {
        eprintln!(
            "{} images could not be read; see {}",
            summary.failures,
            args.out.join("failures.txt").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The precision a checkpointed run was started with (to open the right device first).
fn peek_precision(path: &std::path::Path) -> anyhow::Result<Precision> {
    let ck: crate::train::checkpoint::Checkpoint<RunConfig> =
        crate::train::checkpoint::load(path, &candle_core::Device::Cpu)?;
    Ok(ck.run.precision)
}
