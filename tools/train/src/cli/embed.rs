//! `xrvlm-train embed`: the projected, not normalised, image and text features of a CLIP
//! checkpoint, as JSON `{"image_embeds": [[…]], "text_embeds": [[…]]}` — what a user runs to see
//! that a checkpoint loads right (compare with transformers' `get_image_features` /
//! `get_text_features`).
//!
//! Image rows are the `--image` files in order, then the rows of every `--pixels` file; text
//! rows are the `--text` strings, then the `--token-ids` sequences.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use clap::Args;
use serde::Serialize;
use xrvlm_runtime::image_io::load_rgb;
use xrvlm_runtime::preprocess::Preprocess;

use crate::clip::tokenizer::pad_ids;
use crate::clip::Clip;
use crate::device::{self, DeviceChoice, Precision};

/// Arguments of `embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// CLIP checkpoint directory (config.json, model.safetensors, tokenizer.json).
    pub checkpoint: PathBuf,
    /// An image file, preprocessed as for evaluation (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// A safetensors file whose tensor `pixel_values` is N×3×S×S, already normalised (repeatable).
    #[arg(long = "pixels")]
    pub pixels: Vec<PathBuf>,
    /// A text, tokenized with the checkpoint's tokenizer.json (repeatable).
    #[arg(long = "text")]
    pub texts: Vec<String>,
    /// One token-id sequence, comma-separated, e.g. 49406,320,49407 (repeatable).
    #[arg(long = "token-ids", value_parser = parse_ids)]
    pub token_ids: Vec<TokenIds>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
}

/// One comma-separated token-id sequence.
#[derive(Debug, Clone)]
pub struct TokenIds(pub Vec<u32>);

fn parse_ids(s: &str) -> Result<TokenIds, String> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .map_err(|e| format!("token id {t:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|ids| {
            if ids.is_empty() {
                Err("empty sequence".into())
            } else {
                Ok(TokenIds(ids))
            }
        })
}

#[derive(Serialize)]
struct Embeds {
    image_embeds: Vec<Vec<f32>>,
    text_embeds: Vec<Vec<f32>>,
}

/// Runs `embed`.
pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    if args.images.is_empty()
        && args.pixels.is_empty()
        && args.texts.is_empty()
        && args.token_ids.is_empty()
    {
        bail!("nothing to embed: give --image, --pixels, --text or --token-ids");
    }
    let device = device::open(args.device, Precision::F32)?;
    let clip = Clip::load(&args.checkpoint, &device)
        .with_context(|| format!("loading CLIP checkpoint {}", args.checkpoint.display()))?;
    let out = Embeds {
        image_embeds: image_embeds(&clip, &args, &device)?,
        text_embeds: text_embeds(&clip, &args, &device)?,
    };
    let line = serde_json::to_string(&out)?;
    match writeln!(std::io::stdout().lock(), "{line}") {
        // The reader stopped reading (`| head`): nothing is lost that it wanted.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the embeddings to standard output")?
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn image_embeds(clip: &Clip, args: &EmbedArgs, device: &Device) -> anyhow::Result<Vec<Vec<f32>>> {
    let size = clip.config.vision.image_size();
    let mut batches = Vec::new();
    if !args.images.is_empty() {
        let pre = Preprocess::for_image_size(size as u32);
        let mut flat = Vec::with_capacity(args.images.len() * pre.output_len());
        for path in &args.images {
            let img = load_rgb(path)?;
            flat.extend(
                pre.apply(&img)
                    .with_context(|| format!("preprocessing {}", path.display()))?,
            );
        }
        batches.push(Tensor::from_vec(
            flat,
            (args.images.len(), 3, size, size),
            device,
        )?);
    }
    for path in &args.pixels {
        batches.push(read_pixels(path, size, device)?);
    }
    let mut rows = Vec::new();
    for b in batches {
        rows.extend(clip.image_features(&b)?.to_vec2::<f32>()?);
    }
    Ok(rows)
}

/// Reads `pixel_values` (N×3×S×S) from a safetensors file.
pub fn read_pixels(path: &Path, size: usize, device: &Device) -> anyhow::Result<Tensor> {
    let tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("{}: not a readable safetensors file", path.display()))?;
    let t = tensors
        .get("pixel_values")
        .with_context(|| format!("{}: no tensor named pixel_values", path.display()))?;
    match t.dims() {
        [_, 3, h, w] if *h == size && *w == size => Ok(t.to_dtype(candle_core::DType::F32)?),
        dims => bail!(
            "{}: pixel_values has shape {dims:?}, expected (N, 3, {size}, {size})",
            path.display()
        ),
    }
}

fn text_embeds(clip: &Clip, args: &EmbedArgs, device: &Device) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut seqs: Vec<Vec<u32>> = Vec::new();
    if !args.texts.is_empty() {
        seqs.extend(clip.tokenizer()?.encode_batch(&args.texts)?);
    }
    seqs.extend(args.token_ids.iter().map(|t| t.0.clone()));
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let text = &clip.config.text;
    let pad = clip
        .tokenizer
        .as_ref()
        .map_or(text.pad_token_id, |t| t.pad_id());
    let ids = pad_ids(&seqs, text.max_position_embeddings, pad, device)?;
    Ok(clip.text_features(&ids)?.to_vec2::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_parse() {
        assert_eq!(
            parse_ids("49406, 320,49407").unwrap().0,
            vec![49406, 320, 49407]
        );
        assert!(parse_ids("1,x").is_err());
    }
}
