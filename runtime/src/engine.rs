//! The image model on tract: one optimized plan per precision, batch in, parts out.
//!
//! - `fp32` runs `visual.onnx` as stored.
//! - `int8` runs `visual.int8.onnx` (QOperator form, real integer kernels). On x86-64 CPUs with
//!   AVX-512 VNNI its linear layers run on our own kernel ([`passes::linear`]), elsewhere (ARM
//!   boards included) on tract's; either way the output bits are tract's. Where the CPU has
//!   AVX-512, its attention cores (scores, softmax, weighted values) run on our f32 kernel
//!   ([`passes::attention`]), its LayerNorms are one op each ([`passes::layer_norm`]), and with
//!   VNNI the MLPs' QuickGELU runs in the int8 kernel over each finished tile; these are held
//!   to the f64 definition (the reference kernels) rather than to tract's bits (its
//!   exponential and sigmoid are coarser approximations, its sums run in another order).
//! - `f16` converts `visual.onnx` to f16 at load (tract's float precision translator). It is
//!   offered only where tract has fp16 arithmetic kernels, i.e. ARMv8.2 CPUs with FEAT_FP16
//!   (Jetson Orin, Raspberry Pi 5), as the auxiliary vector reports it (`cpu_features.rs`, which
//!   also tells tract); elsewhere loading it is an error that says so, rather than a silently
//!   slow emulation.
//!
//! A plan is built from an [`ImageModel`](crate::bundle::ImageModel), the bytes of the
//! bundle's file read once and checked against the manifest's SHA-256 ([`Bundle::image_model`]): the model that runs is the model
//! that was verified.
//!
//! Every plan is optimized for one image per run (the batch axis fixed to 1 before tract
//! optimizes): a camera classifies frame by frame, and with the batch axis left symbolic tract
//! 0.23.9 lowers the int8 products batch-major and loops over the tokens, which made a
//! ViT-B/16-sized int8 model 3.8× slower than fp32 (measured at export; 0.8× with the batch
//! fixed). [`Plan::run`] takes any number of images and runs them one after another.
//!
//! The number of threads is fixed per plan: tract runs the plan inside its own rayon pool of
//! that size (`RunOptions::executor`), so two plans with different thread counts can live in
//! one process.
//!
//! # Layout
//!
//! - this file: [`Plan`], its options and errors, and the pipeline ONNX file → tract's typed
//!   model → our passes around tract's optimizer → runnable plan.
//! - [`passes`]: our graph passes (portable matching and rewriting, tested on every
//!   architecture) and which of them a plan gets.
//! - [`kernels`]: what the passes' ops compute: the portable reference kernels, each
//!   architecture's faster ones, and the one table of them a process uses.
//! - [`profile`]: per-operation times of a plan (`xrvlm bench --profile`).
//! - [`maps`]: the part maps as a plan's second output (`xrvlm classify --explain`).
//! - `cpu_features`: what the CPU offers beyond the baseline (fp16), and what tract is told.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::floats::FloatPrecisionTranslator;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
use tract_onnx::tract_core::transform::ModelTransform;

use crate::bundle::manifest::ModelPrecision;
use crate::bundle::{Bundle, BundleError};
use maps::MapsShape;
use passes::Passes;

/// The name of our int8 linear layer op in a plan ([`passes::linear`]).
pub const INT8_LINEAR_OP: &str = "Int8Linear(xrvlm)";
/// The name of our attention op in a plan ([`passes::attention`]).
pub const ATTENTION_OP: &str = "Attention(xrvlm)";
/// The name of our LayerNorm op in a plan ([`passes::layer_norm`]).
pub const LAYER_NORM_OP: &str = "LayerNorm(xrvlm)";
/// How [`Plan::int8_kernels`] names our AVX-512 VNNI kernel of int8 linear layers.
pub const INT8_LINEAR_KERNEL: &str = "xrvlm_avx512vnni_i32_8x48";

/// Arithmetic the image model runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Float32, `visual.onnx` as stored.
    Fp32,
    /// Integer kernels, `visual.int8.onnx`.
    Int8,
    /// Float16, `visual.onnx` converted at load; ARM CPUs with fp16 arithmetic only.
    F16,
}

impl Precision {
    /// Every precision, in the order of the CLI's help.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Int8, Precision::F16];

    /// The stored model this precision runs.
    pub fn source(&self) -> ModelPrecision {
        match self {
            Precision::Fp32 | Precision::F16 => ModelPrecision::Fp32,
            Precision::Int8 => ModelPrecision::Int8,
        }
    }

    /// Whether this CPU can run the precision (only `f16` depends on the CPU).
    pub fn is_available(&self) -> bool {
        match self {
            Precision::F16 => cpu_features::features().fp16,
            Precision::Fp32 | Precision::Int8 => true,
        }
    }

    /// The CLI spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
            Precision::F16 => "f16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown precision name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: expected fp32, int8 or f16")]
pub struct PrecisionParseError(String);

impl FromStr for Precision {
    type Err = PrecisionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| PrecisionParseError(s.to_string()))
    }
}

/// Why a plan could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The bundle has no stored model for the precision.
    #[error("{}: the bundle has no {needed:?} image model, needed for --precision {precision}", dir.display())]
    NotInBundle {
        /// The bundle directory.
        dir: PathBuf,
        /// The precision asked for.
        precision: Precision,
        /// The stored model it needs.
        needed: ModelPrecision,
    },
    /// f16 asked for on a CPU without fp16 arithmetic.
    #[error(
        "--precision f16 needs a CPU with fp16 arithmetic (ARMv8.2 FEAT_FP16, `fphp asimdhp` \
         in the auxiliary vector's hardware capabilities), which this one lacks; use fp32 or int8"
    )]
    F16Unavailable,
    /// The image model's file is missing, unreadable or not what the manifest records.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// tract could not load or optimize the model.
    #[error("{}: tract cannot load the model: {message}", file.display())]
    Load {
        /// The ONNX file.
        file: PathBuf,
        /// tract's error chain.
        message: String,
    },
    /// The input is not whole images of 3·S·S floats.
    #[error("input holds {len} floats, not a multiple of 3·S·S = {per_image}")]
    InputShape {
        /// Floats given.
        len: usize,
        /// Floats per image.
        per_image: usize,
    },
    /// tract failed while running.
    #[error("tract failed running the image model: {0}")]
    Run(String),
    /// The model produced an output of an unexpected shape.
    #[error("the image model returned shape {found:?}, expected {expected:?}")]
    OutputShape {
        /// (N, M, D).
        expected: Vec<usize>,
        /// What came back.
        found: Vec<usize>,
    },
    /// Part maps asked of a bundle whose manifest names no maps tensor for the model.
    #[error(
        "{}: the manifest names no part_maps tensor for this image model, so it cannot \
         explain its predictions (re-export the bundle, or add part_maps to its [[files]] entry)",
        file.display()
    )]
    NoPartMaps {
        /// The ONNX file.
        file: PathBuf,
    },
    /// The tensor the manifest names as the part maps is not UnA's maps.
    #[error(
        "{}: part_maps tensor {tensor:?} has shape {found:?} in the optimized plan; UnA's maps \
         of one image are a softmax over g² tokens (a square grid) for each of M+1 = {rows} maps",
        file.display()
    )]
    PartMapsShape {
        /// The ONNX file.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// M + 1.
        rows: usize,
        /// Its shape in the plan (`None` where it is not concrete).
        found: Option<Vec<usize>>,
    },
    /// [`Plan::run_explained`] on a plan built without part maps.
    #[error("this plan was built without part maps (Plan::load_explained builds one with them)")]
    NotExplained,
}

/// How to build a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Arithmetic.
    pub precision: Precision,
    /// Threads tract may use.
    pub threads: NonZeroUsize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            precision: Precision::Fp32,
            threads: NonZeroUsize::MIN,
        }
    }
}

/// An optimized, runnable image model.
#[derive(Debug, Clone)]
pub struct Plan {
    options: PlanOptions,
    runnable: Arc<TypedRunnableModel>,
    /// The plan's thread pool: tract's parallel ops and our kernel run on it, and so does the
    /// plan itself ([`Plan::in_pool`]).
    executor: Executor,
    /// S.
    image_size: usize,
    /// M and D.
    parts: usize,
    embed: usize,
    /// The part maps' layout in the second output, for a plan built with them.
    maps: Option<MapsShape>,
}

/// What a plan needs to know of its image model besides the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// Input side S of `image` (N, 3, S, S).
    pub image_size: usize,
    /// M of `parts` (N, M, D).
    pub parts: usize,
    /// D of `parts` (N, M, D).
    pub embed: usize,
}

impl ModelShape {
    /// The shape `bundle`'s manifest gives its image models.
    pub fn of(bundle: &Bundle) -> Self {
        Self {
            image_size: bundle.manifest().backbone.image_size as usize,
            parts: bundle.dims().parts(),
            embed: bundle.dims().embed(),
        }
    }
}

impl Plan {
    /// The integer matrix products of this plan ([`int8_products`]).
    pub fn int8_products(&self) -> Vec<(String, String)> {
        int8_products(self.runnable.model())
    }

    /// The kernels of [`Plan::int8_products`], each once: the proof that int8 runs as int8 on
    /// this machine.
    pub fn int8_kernels(&self) -> Vec<String> {
        let mut kernels: Vec<String> = self.int8_products().into_iter().map(|(_, k)| k).collect();
        kernels.sort();
        kernels.dedup();
        kernels
    }

    /// Loads and optimizes the bundle's image model for `options` ([`Plan::from_onnx`] on the
    /// bundle's file for the precision, read and verified by [`Bundle::image_model`]).
    pub fn load(bundle: &Bundle, options: PlanOptions) -> Result<Self, EngineError> {
        let precision = options.precision;
        check_available(precision)?;
        let model =
            bundle
                .image_model(precision.source())
                .ok_or_else(|| EngineError::NotInBundle {
                    dir: bundle.dir().to_path_buf(),
                    precision,
                    needed: precision.source(),
                })??;
        let shape = ModelShape::of(bundle);
        Self::from_onnx(model.path(), model.bytes(), shape, options)
    }

    /// The plan the device runs for the ONNX image model `onnx` (called `name` in errors): the
    /// batch fixed to one image, converted to f16 when asked, and the engine's passes applied
    /// around tract's optimizer. The one way a graph becomes a plan: bundles load through it,
    /// and the export judges its int8 candidates with it, so it judges what devices run.
    pub fn from_onnx(
        name: &Path,
        onnx: &[u8],
        shape: ModelShape,
        options: PlanOptions,
    ) -> Result<Self, EngineError> {
        check_available(options.precision)?;
        let executor = executor(options);
        let runnable = build(onnx, shape.image_size, options, &executor, None).map_err(|e| {
            EngineError::Load {
                file: name.to_path_buf(),
                message: format!("{e:#}"),
            }
        })?;
        Ok(Self::assemble(options, runnable, executor, shape, None))
    }

    /// A plan of `runnable` for a model of `shape`, with the part maps' layout when it was
    /// built with them.
    fn assemble(
        options: PlanOptions,
        runnable: Arc<TypedRunnableModel>,
        executor: Executor,
        shape: ModelShape,
        maps: Option<MapsShape>,
    ) -> Self {
        Self {
            options,
            runnable,
            executor,
            image_size: shape.image_size,
            parts: shape.parts,
            embed: shape.embed,
            maps,
        }
    }

    /// The options the plan was built with.
    pub fn options(&self) -> PlanOptions {
        self.options
    }

    /// Floats of one preprocessed image, 3·S·S.
    pub fn input_len(&self) -> usize {
        3 * self.image_size * self.image_size
    }

    /// Runs preprocessed images (N, 3, S, S) row-major and returns parts (N, M, D).
    pub fn run(&self, images: &[f32]) -> Result<Vec<f32>, EngineError> {
        let per_image = self.input_len();
        if images.is_empty() || !images.len().is_multiple_of(per_image) {
            return Err(EngineError::InputShape {
                len: images.len(),
                per_image,
            });
        }
        let n = images.len() / per_image;
        let mut data = Vec::with_capacity(n * self.parts * self.embed);
        for image in images.chunks_exact(per_image) {
            data.extend(self.run_one(image)?);
        }
        Ok(data)
    }

    /// Runs `f` on one of the plan's own threads, so that a plan of n threads keeps n threads
    /// busy: run from outside the pool, its serial ops would run on the caller's thread while
    /// the pool's idle workers spin beside it. (On the 2-vCPU benchmark machine this made no
    /// difference that stood out of its run-to-run noise.)
    fn in_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.executor {
            Executor::MultiThread(pool) => pool.install(f),
            _ => f(),
        }
    }

    /// Runs one preprocessed image (3, S, S) and returns its parts (M, D).
    fn run_one(&self, image: &[f32]) -> Result<Vec<f32>, EngineError> {
        let outputs = self.run_outputs(image)?;
        self.parts_of(&outputs[0])
    }

    /// Every output of the plan for one preprocessed image (3, S, S), as f32.
    fn run_outputs(&self, image: &[f32]) -> Result<TVec<Tensor>, EngineError> {
        let s = self.image_size;
        let run = || -> TractResult<TVec<Tensor>> {
            let mut input = Tensor::from_shape(&[1, 3, s, s], image)?;
            if self.options.precision == Precision::F16 {
                input = input.cast_to::<f16>()?.into_owned();
            }
            let outputs = self.runnable.run(tvec!(input.into_tvalue()))?;
            outputs
                .into_iter()
                .map(|output| Ok(output.into_tensor().cast_to::<f32>()?.into_owned()))
                .collect()
        };
        self.in_pool(run)
            .map_err(|e| EngineError::Run(format!("{e:#}")))
    }

    /// The values of one image's parts output, checked to be (1, M, D).
    fn parts_of(&self, parts: &Tensor) -> Result<Vec<f32>, EngineError> {
        let expected = vec![1, self.parts, self.embed];
        if parts.shape() != expected.as_slice() {
            return Err(EngineError::OutputShape {
                expected,
                found: parts.shape().to_vec(),
            });
        }
        plain_f32(parts)
    }
}

/// The values of an f32 tensor.
fn plain_f32(tensor: &Tensor) -> Result<Vec<f32>, EngineError> {
    tensor
        .try_as_plain_ram()
        .and_then(|view| Ok(view.as_slice::<f32>()?.to_vec()))
        .map_err(|e| EngineError::Run(format!("{e:#}")))
}

/// Refuses a precision this CPU cannot run ([`Precision::is_available`]).
fn check_available(precision: Precision) -> Result<(), EngineError> {
    if precision.is_available() {
        Ok(())
    } else {
        Err(EngineError::F16Unavailable)
    }
}

/// The integer matrix products of an optimized tract model (none for a float one), as
/// `(node, kernel)`: tract's kernels, e.g. `arm64simd_mmm_i32_8x8_dot` where the CPU has SDOT
/// (tract's lowering of `MatMulInteger` and `ConvInteger`), and ours ([`INT8_LINEAR_KERNEL`])
/// for the layers our pass took over.
pub fn int8_products(model: &TypedModel) -> Vec<(String, String)> {
    let nodes = model.nodes();
    let ours = nodes.iter().filter_map(|node| {
        let op = node.op_as::<passes::linear::Int8Linear>()?;
        Some((node.name.clone(), op.kernel_name().to_string()))
    });
    tract_products(model, DatumType::I32).chain(ours).collect()
}

/// tract's matrix products of `model` that accumulate in `internal`, as `(node, kernel)`.
fn tract_products(
    model: &TypedModel,
    internal: DatumType,
) -> impl Iterator<Item = (String, String)> + '_ {
    model.nodes().iter().filter_map(move |node| {
        let op = node.op_as::<OptMatMul>()?;
        let kernel = op
            .mmm
            .iter()
            .find(|kernel| kernel.internal_type() == internal)?;
        Some((node.name.clone(), kernel.name().to_string()))
    })
}

/// ONNX bytes → optimized model ([`optimized_with`], every pass that applies) → runnable on
/// `executor`; with the value called `maps` as a second output when given.
fn build(
    onnx: &[u8],
    image_size: usize,
    options: PlanOptions,
    executor: &Executor,
    maps: Option<&str>,
) -> TractResult<Arc<TypedRunnableModel>> {
    let passes = Passes::for_plan(options);
    runnable(
        optimized_with(onnx, image_size, options, passes, maps)?,
        executor,
    )
}

/// tract's optimized model with every pass that applies ([`Passes::for_plan`]).
#[cfg(test)]
fn optimized(onnx: &[u8], image_size: usize, options: PlanOptions) -> TractResult<TypedModel> {
    optimized_with(onnx, image_size, options, Passes::for_plan(options), None)
}

/// ONNX bytes → typed model for one image (→ f16) → our passes around tract's optimizer. With
/// `maps`, the softmax of that name becomes the optimized model's second output
/// ([`maps::tap_maps`]: after optimizing, so that the model computes what it computes
/// without).
fn optimized_with(
    onnx: &[u8],
    image_size: usize,
    options: PlanOptions,
    passes: Passes,
    maps: Option<&str>,
) -> TractResult<TypedModel> {
    // Before tract's kernels are first used: it probes its instruction sets once.
    cpu_features::features();
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])?
        .with_input_fact(0, f32::fact([1, 3, image_size, image_size]).into())?
        .into_typed()?;
    if options.precision == Precision::F16 {
        model = model.into_decluttered()?;
        FloatPrecisionTranslator::new(f32::datum_type(), f16::datum_type())
            .transform(&mut model)?;
    }
    let mut model = passes.before_optimizing(model)?.into_optimized()?;
    passes.after_optimizing(&mut model)?;
    if let Some(tensor) = maps {
        maps::tap_maps(&mut model, tensor)?;
    }
    Ok(model)
}

/// The pool of `options.threads` a plan runs on.
fn executor(options: PlanOptions) -> Executor {
    match options.threads.get() {
        1 => Executor::SingleThread,
        n => Executor::multithread(n),
    }
}

/// The model, runnable on `executor`.
fn runnable(model: TypedModel, executor: &Executor) -> TractResult<Arc<TypedRunnableModel>> {
    let run_options = RunOptions {
        executor: Some(executor.clone()),
        ..RunOptions::default()
    };
    model.into_runnable_with_options(&run_options)
}

mod profile;

/// A single-threaded plan of a test model written to `file`.
#[cfg(test)]
fn tiny_plan(
    file: &std::path::Path,
    precision: Precision,
    model: &crate::test_support::onnx_model::TinyModel,
) -> Plan {
    let options = PlanOptions {
        precision,
        threads: NonZeroUsize::MIN,
    };
    let executor = executor(options);
    Plan {
        options,
        runnable: build(
            &std::fs::read(file).unwrap(),
            model.image_size,
            options,
            &executor,
            None,
        )
        .unwrap(),
        executor,
        image_size: model.image_size,
        parts: model.parts,
        embed: model.embed,
        maps: None,
    }
}
mod cpu_features;
mod kernels;
pub mod maps;
mod passes;
pub use maps::PartMaps;
pub use profile::{OpTime, Profile};

#[cfg(test)]
mod f16_tests;
#[cfg(test)]
mod int8_tests;
