//! Where training runs and at which precision: `cpu` (default), `cuda` or `cuda:N`, and `f32` or
//! `bf16` (bf16 only on CUDA: the frozen towers compute in bf16, heads and optimiser in f32).
//!
//! CUDA is a crate feature. Without it, candle's own dummy backend answers every CUDA request
//! with an error; we turn that into a message that says how to get a CUDA build.

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

/// The device requested on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}; expected cpu, cuda or cuda:N")),
        }
    }
}

/// Compute precision of the frozen towers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Full precision everywhere.
    F32,
    /// bf16 towers (CUDA only), f32 heads.
    Bf16,
}

impl Precision {
    /// The towers' dtype.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }
}

/// Errors opening a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// CUDA was requested from a build without it, or the GPU could not be opened.
    #[error("cannot open CUDA device {ordinal}: {reason}")]
    Cuda {
        /// The requested ordinal.
        ordinal: usize,
        /// Why.
        reason: String,
    },
    /// bf16 was requested on the CPU.
    #[error("bf16 is only supported on CUDA; use --precision f32 on the CPU")]
    Bf16OnCpu,
}

/// Opens the device and checks the precision fits it.
pub fn open(choice: DeviceChoice, precision: Precision) -> Result<Device, DeviceError> {
    match choice {
        DeviceChoice::Cpu if precision == Precision::Bf16 => Err(DeviceError::Bf16OnCpu),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(ordinal) => Device::new_cuda(ordinal).map_err(|e| DeviceError::Cuda {
            ordinal,
            reason: if cuda_compiled() {
                e.to_string()
            } else {
                "this binary was built without CUDA; rebuild with `--features cuda` \
                 (tools/build-cuda.sh builds it on a machine without a GPU)"
                    .into()
            },
        }),
    }
}

/// Whether this binary was built with the `cuda` feature.
pub fn cuda_compiled() -> bool {
    candle_core::utils::cuda_is_available()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_rejects_bf16_on_cpu() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!(matches!(
            open(DeviceChoice::Cpu, Precision::Bf16),
            Err(DeviceError::Bf16OnCpu)
        ));
        if !cuda_compiled() {
            let err = open(DeviceChoice::Cuda(0), Precision::F32)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
