//! The signature flags of the commands that open a bundle to run it (`classify`, `check`):
//! `--require-signature` with one or more `--trusted-key`, the command line's twin of a
//! profile's `[model] require_signature` and `trusted_keys` (which `run` reads).

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::signing::{PublicKey, TrustPolicy};

/// Which signatures the bundle must carry.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TrustArgs {
    /// A public key whose signature is accepted: a `.pub` file of `xrvlm keygen` or its text
    /// (`ed25519:<hex>`); repeat for several.
    #[arg(
        long = "trusted-key",
        value_name = "KEY",
        requires = "require_signature"
    )]
    pub trusted_keys: Vec<String>,
    /// Refuse a bundle not signed by a --trusted-key, or changed after it was signed.
    #[arg(long, requires = "trusted_keys")]
    pub require_signature: bool,
}

impl TrustArgs {
    /// The policy the flags ask for.
    pub fn policy(&self) -> Result<TrustPolicy> {
        if !self.require_signature {
            return Ok(TrustPolicy::permissive());
        }
        let keys = self
            .trusted_keys
            .iter()
            .map(|key| read_key(key))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustPolicy::require(keys))
    }
}

/// A key given as its text or as a `.pub` file.
fn read_key(key: &str) -> Result<PublicKey> {
    if key.starts_with("ed25519") {
        return PublicKey::parse(key)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--trusted-key {key}"));
    }
    PublicKey::load(key.as_ref()).with_context(|| format!("--trusted-key {key}"))
}
