//! `xrvlm-train set-taxonomy --bundle DIR --taxonomy FILE`: gives an existing bundle's classes
//! their genus, family, order and class ([`crate::taxonomy_file`]), so that the runtime can
//! answer a genus when no species is sure. Only `manifest.toml` changes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::taxonomy_file;

/// Arguments of `set-taxonomy`.
#[derive(Debug, Args)]
pub struct SetTaxonomyArgs {
    /// The bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// A synthetic dataset's species.json, or a CSV file with a `label` column and any of
    /// genus, family, order, class.
    #[arg(long)]
    pub taxonomy: PathBuf,
    /// The no-animal class, which has no taxonomy.
    #[arg(long, default_value = "blank")]
    pub blank_label: String,
}

/// Runs `set-taxonomy`.
pub fn run(args: SetTaxonomyArgs) -> anyhow::Result<ExitCode> {
    let manifest = taxonomy_file::install(&args.bundle, &args.taxonomy, &args.blank_label)
        .with_context(|| format!("giving {} its taxonomy", args.bundle.display()))?;
    let genera: std::collections::BTreeSet<_> = manifest
        .classes
        .iter()
        .filter_map(|c| c.taxonomy.as_ref()?.genus.as_deref())
        .collect();
    println!(
        "{}: {} classes in {} genera (format_version {})",
        args.bundle.display(),
        manifest.classes.len(),
        genera.len(),
        manifest.required_format().0
    );
    Ok(ExitCode::SUCCESS)
}
