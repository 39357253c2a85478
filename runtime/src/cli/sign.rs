//! `xrvlm sign BUNDLE --key KEY`: verify a bundle and sign its manifest, writing
//! `manifest.sig` (`models/BUNDLE.md`, "Signatures"). A bundle that fails verification is not
//! signed: a signature vouches for every file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xrvlm_runtime::bundle::signing::{self, SecretKey, SIGNATURE_FILE};
use xrvlm_runtime::bundle::Bundle;

use super::Status;

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The model bundle directory.
    pub bundle: PathBuf,
    /// The secret key (`PREFIX.key` of `xrvlm keygen`).
    #[arg(long)]
    pub key: PathBuf,
}

/// Runs `sign`.
pub fn run(args: SignArgs) -> Result<Status> {
    let key = SecretKey::load(&args.key)?;
    let context = || format!("verifying bundle {} before signing", args.bundle.display());
    let bundle = Bundle::open(&args.bundle).with_context(context)?;
    bundle.verify_image_models().with_context(context)?;
    let signer = signing::sign(bundle.dir(), &key)?;
    println!(
        "signed {} by {} ({SIGNATURE_FILE})",
        args.bundle.display(),
        signer.fingerprint()
    );
    Ok(Status::Success)
}
