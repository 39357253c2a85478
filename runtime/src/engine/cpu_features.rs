//! The CPU features the engine asks about itself, detected once per process, and what tract is
//! told about them: today fp16 arithmetic (FEAT_FP16), which the f16 plan needs.
//!
//! tract-linalg 0.23.9 decides whether to use its fp16 kernels from `asimdhp` in
//! `/proc/cpuinfo`. That is the wrong witness under qemu-user, which shows the host's file (an
//! x86 one here), so a Cortex-A76 emulated for CI was told it had no fp16. The auxiliary
//! vector's hardware capabilities (`HWCAP_FPHP`, `HWCAP_ASIMDHP`) are what both the kernel on a
//! board and qemu for the CPU it emulates set from the CPU itself, and
//! `is_aarch64_feature_detected!("fp16")` reads them. Where they say yes, [`features`] adds
//! `fp16` to tract's instruction sets through its `TRACT_CPU_ISA` knob; tract reads that knob
//! once, when it first probes its instruction sets (on the first use of its kernels), so
//! [`features`] runs at the top of every plan building and of `Precision::is_available`, before
//! any of tract's kernels.
//!
//! Besides `kernels.rs` and the architecture folders, this is the one module of the engine that
//! names a `target_arch`, and only at its edges ([`cpu_has_fp16`]).

use std::sync::OnceLock;

use tract_linalg::isa::Isa;
use tract_linalg::knobs::TRACT_CPU_ISA;

/// What this CPU offers the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFeatures {
    /// fp16 arithmetic as tract runs it: the CPU has FEAT_FP16 and tract's own instruction sets
    /// include it (they do unless the user took it out with `TRACT_CPU_ISA=-fp16`).
    pub fp16: bool,
}

/// This CPU's features. The first call detects them and tells tract; call it before anything
/// uses tract's kernels.
pub fn features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(|| {
        let fp16 = cpu_has_fp16();
        if fp16 {
            TRACT_CPU_ISA.set(Some(with_fp16(TRACT_CPU_ISA.get().as_deref())));
        }
        CpuFeatures {
            fp16: fp16 && tract_linalg::isa::native().has(Isa::Aarch64Fp16),
        }
    })
}

/// The `TRACT_CPU_ISA` value that adds `fp16` to the probed set, followed by what the user
/// asked for (the environment's value), whose edits come later and so win.
fn with_fp16(user: Option<&str>) -> String {
    match user.map(str::trim) {
        Some(edits) if !edits.is_empty() => format!("+fp16,{edits}"),
        _ => "+fp16".to_string(),
    }
}

/// FEAT_FP16, from the auxiliary vector.
#[cfg(target_arch = "aarch64")]
fn cpu_has_fp16() -> bool {
    std::arch::is_aarch64_feature_detected!("fp16")
}

/// No FEAT_FP16 outside aarch64: tract's answer (false on every CPU it has no fp16 kernels for).
#[cfg(not(target_arch = "aarch64"))]
fn cpu_has_fp16() -> bool {
    tract_linalg::has_fp16()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_comes_first_so_that_the_users_edits_win() {
        assert_eq!(with_fp16(None), "+fp16");
        assert_eq!(with_fp16(Some(" ")), "+fp16");
        assert_eq!(with_fp16(Some("-dotprod")), "+fp16,-dotprod");
        assert_eq!(with_fp16(Some("-fp16")), "+fp16,-fp16");
    }
}
