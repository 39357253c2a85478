//! Our passes over tract's model: graph matching and rewriting only, portable, compiled and
//! tested on every architecture. Each replaces a chain of tract ops by one op of ours that
//! runs a kernel of a [`Kernels`] table:
//!
//! - [`linear`]: int8 linear layers (and the QuickGELU after one) on the int8 product kernel;
//!   bit-identical to tract's (the QuickGELU a few ulp from its definition).
//! - [`attention`]: attention cores on the attention kernel; close to tract's, not its bits.
//! - [`layer_norm`]: LayerNorms as one op each; close to tract's, not its bits.
//! - [`quantize`]: tract's activation quantizers; bit-identical to tract's.
//! - [`rewrite`]: what the passes before tract's optimizer share.
//!
//! [`Passes`] says which passes a plan gets and on which kernels: a device's plan takes a pass
//! whose point is speed only where [`Kernels::best`] has a native kernel for it; tests take
//! every pass, on every table this CPU runs ([`Kernels::all_here`]).

pub mod attention;
pub mod layer_norm;
pub mod linear;
pub mod quantize;
mod rewrite;

use tract_onnx::prelude::*;

use super::kernels::Kernels;
use super::{PlanOptions, Precision};

/// Which of our passes a plan gets, and the kernels their ops run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Passes {
    /// int8 linear layers on our kernel ([`linear`]), before tract optimizes.
    pub linear: bool,
    /// QuickGELU computed by the int8 kernel of the layer before it (with `linear`).
    pub activations: bool,
    /// Attention cores on our kernel ([`attention`]), before tract optimizes.
    pub attention: bool,
    /// LayerNorms as one op each ([`layer_norm`]), before tract optimizes.
    pub layer_norm: bool,
    /// tract's activation quantizers replaced by ours ([`quantize`]), after.
    pub quantize: bool,
    /// The kernels the ops of the passes run.
    pub kernels: &'static Kernels,
}

impl Passes {
    /// tract's plan as it comes.
    #[cfg(test)]
    pub fn none() -> Self {
        Self {
            linear: false,
            activations: false,
            attention: false,
            layer_norm: false,
            quantize: false,
            kernels: Kernels::best(),
        }
    }

    /// Every pass, on `kernels` (tests: the passes are tested with each table this CPU runs).
    #[cfg(test)]
    pub fn all(kernels: &'static Kernels) -> Self {
        Self {
            linear: true,
            activations: true,
            attention: true,
            layer_norm: true,
            quantize: true,
            kernels,
        }
    }

    /// The passes a device's plan gets: for int8, each pass whose kernel is native on this CPU
    /// ([`Kernels::best`]), and the quantizers everywhere (even the portable loop beats tract's
    /// scalar one).
    pub fn for_plan(options: PlanOptions) -> Self {
        let kernels = Kernels::best();
        let int8 = options.precision == Precision::Int8;
        let linear = int8 && kernels.int8_gemm_kernel().native;
        Self {
            linear,
            activations: linear,
            attention: int8 && kernels.attention_kernel().native,
            layer_norm: int8 && kernels.layer_norm_kernel().native,
            quantize: int8,
            kernels,
        }
    }

    /// The passes on the typed model, before tract optimizes it (they match the decluttered
    /// form).
    pub fn before_optimizing(&self, model: TypedModel) -> TractResult<TypedModel> {
        if !(self.linear || self.attention || self.layer_norm) {
            return Ok(model);
        }
        let mut model = model.into_decluttered()?;
        if self.linear {
            let fusion = match self.activations {
                true => linear::Fusion::QuickGelu,
                false => linear::Fusion::Exact,
            };
            linear::replace_linears(&mut model, fusion, self.kernels)?;
        }
        if self.attention {
            attention::replace_attention(&mut model, self.kernels)?;
        }
        if self.layer_norm {
            layer_norm::replace_layer_norms(&mut model, self.kernels)?;
        }
        Ok(model)
    }

    /// The passes on tract's optimized model.
    pub fn after_optimizing(&self, model: &mut TypedModel) -> TractResult<()> {
        if self.quantize {
            quantize::replace_quantizers(model, self.kernels)?;
        }
        Ok(())
    }
}
