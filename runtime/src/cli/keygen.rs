//! `xrvlm keygen --out PREFIX`: a new Ed25519 key pair for signing bundles: `PREFIX.key`
//! (secret, mode 0600, never written over an existing file) and `PREFIX.pub` (one line, for
//! `trusted_keys` and `--trusted-key`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::signing::SecretKey;

use super::Status;

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Path prefix of the two files written: PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

/// Runs `keygen`.
pub fn run(args: KeygenArgs) -> Result<Status> {
    let key = SecretKey::generate().context("cannot draw a key from the system's random source")?;
    let (secret, public) = key.write_pair(&args.out)?;
    println!("secret key  {} (keep it off the devices)", secret.display());
    println!("public key  {}", public.display());
    println!("fingerprint {}", key.public().fingerprint());
    Ok(Status::Success)
}
