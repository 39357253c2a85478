//! `xrvlm-train pretrain` end to end on a tiny stand-in of a `xrvlm-train synth` directory
//! (same layout: `<species>/<NNNNN>.png`, `captions.jsonl`, `species.json`), written by the test:
//! the contrastive loss falls, the written checkpoint is a CLIP checkpoint that `Clip::load` and
//! `xrvlm-train embed` read, its tokenizer keeps MPP's "X" one token, runs are reproducible, and a
//! bad caption line is reported with its file and line.

use std::path::Path;
use std::process::Command;

use candle_core::Device;
use image::{Rgb, RgbImage};
use xrvlm_train::clip::Clip;
use xrvlm_train::pretrain::{pretrain, Holdout, ModelSize, PretrainConfig};

/// Stand-in species: name, body colour, words for the colour.
const SPECIES: [(&str, [u8; 3], &str); 4] = [
    ("red_finch", [220, 40, 40], "red"),
    ("blue_jay", [40, 60, 220], "blue"),
    ("green_parrot", [40, 200, 60], "green"),
    ("yellow_warbler", [230, 210, 40], "yellow"),
];
/// Images per species.
const PER_SPECIES: usize = 8;
/// Side of the stand-in images (synth writes about 72 px).
const SIDE: u32 = 72;

/// A bird-like blob of `colour` on a grey ground, placed by `i`; `night` darkens it.
fn bird(colour: [u8; 3], i: usize, night: bool) -> RgbImage {
    let (cx, cy) = (24 + (i as i32 * 5) % 24, 28 + (i as i32 * 3) % 16);
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (dx, dy) = (x as i32 - cx, y as i32 - cy);
        let px = if dx * dx + 2 * dy * dy < 220 {
            colour
        } else {
            [110, 115, 105]
        };
        if night {
            let g = (px[0] as u32 + px[1] as u32 + px[2] as u32) / 6;
            Rgb([g as u8; 3])
        } else {
            Rgb(px)
        }
    })
}

/// Writes the stand-in synth directory under `root`.
fn write_synth(root: &Path) {
    let mut lines = Vec::new();
    let mut species = Vec::new();
    for (s, (name, colour, word)) in SPECIES.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..PER_SPECIES {
            let night = i % 4 == 3;
            let image = format!("{name}/{i:05}.png");
            bird(*colour, i + s, night).save(root.join(&image)).unwrap();
            let caption = match (i % 3, night) {
                (_, true) => format!("a {word} bird at night."),
                (0, _) => format!("a bird with a {word} body."),
                (1, _) => format!("a {} with {word} feathers.", name.replace('_', " ")),
                _ => format!("a small {word} bird, perched."),
            };
            lines.push(serde_json::json!({
                "image": image, "caption": caption, "species": name,
                "night": night, "empty": false,
            }));
        }
        species.push(serde_json::json!({
            "name": name, "label": s, "attributes": {"colour": word},
            "description": format!("a bird with a {word} body."),
        }));
    }
    std::fs::create_dir_all(root.join("blank")).unwrap();
    for i in 0..3 {
        let image = format!("blank/{i:05}.png");
        RgbImage::from_pixel(SIDE, SIDE, Rgb([110, 115, 105]))
            .save(root.join(&image))
            .unwrap();
        lines.push(serde_json::json!({
            "image": image, "caption": "an empty frame.", "species": "blank",
            "night": false, "empty": true,
        }));
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(root.join("captions.jsonl"), text).unwrap();
    let file = serde_json::json!({"world": 1, "species": species});
    std::fs::write(root.join("species.json"), file.to_string()).unwrap();
}

/// A model small enough to train in seconds in a debug build.
fn tiny_size() -> ModelSize {
    ModelSize {
        image_size: 32,
        patch_size: 8,
        vision_width: 32,
        vision_layers: 4,
        vision_heads: 2,
        text_width: 32,
        text_layers: 2,
        text_heads: 2,
        projection_dim: 16,
        mlp_ratio: 2,
    }
}

fn tiny_config(data: &Path, out: &Path) -> PretrainConfig {
    PretrainConfig {
        holdout: Holdout::Last(1),
        eval_per_species: 2,
        epochs: 6,
        batch_size: 8,
        lr: 2e-3,
        warmup_steps: 2,
        seed: 5,
        size: tiny_size(),
        ..PretrainConfig::new(data.to_path_buf(), out.to_path_buf())
    }
}

#[test]
fn pretraining_lowers_the_loss_and_writes_a_clip_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("synth"), tmp.path().join("clip"));
    write_synth(&data);
    let report = pretrain(&tiny_config(&data, &out), &Device::Cpu).unwrap();

    let (first, last) = (report.epoch_losses[0], *report.epoch_losses.last().unwrap());
    assert!(last < first - 0.05, "loss {first} -> {last}");
    assert_eq!(report.held_out, ["yellow_warbler"]);
    // 3 seen species × (8 − 2 held back) + 3 blank frames.
    assert_eq!(report.pairs, 3 * 6 + 3);
    let held_out = report.zero_shot.held_out.as_ref().unwrap();
    assert_eq!(held_out.images, PER_SPECIES);
    assert_eq!(report.zero_shot.seen.as_ref().unwrap().images, 3 * 2);
    for file in [
        "zero_shot.json",
        "pretrain/metrics.jsonl",
        "pretrain/curves.png",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }

    let clip = Clip::load(&out, &Device::Cpu).unwrap();
    assert_eq!(clip.config, report.config);
    let tok = clip.tokenizer().unwrap();
    assert_eq!(clip.config.text.eos_token_id, tok.eot_id());
    assert_eq!(tok.encode_words("X").unwrap().len(), 1);
    assert_eq!(tok.encode_words("X X X X red finch.").unwrap().len(), 7);
    assert!((clip.logit_scale - report.logit_scale).abs() < 1e-6);

    let embed = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("embed")
        .arg(&out)
        .arg("--image")
        .arg(data.join("red_finch/00000.png"))
        .args(["--text", "a bird with a red body."])
        .output()
        .unwrap();
    assert!(
        embed.status.success(),
        "{}",
        String::from_utf8_lossy(&embed.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&embed.stdout).unwrap();
    let dim = tiny_size().projection_dim;
    assert_eq!(json["image_embeds"][0].as_array().unwrap().len(), dim);
    assert_eq!(json["text_embeds"][0].as_array().unwrap().len(), dim);
}

#[test]
fn same_seed_gives_the_same_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    write_synth(&data);
    let run_as = |name: &str, seed, half_weights| {
        let out = tmp.path().join(name);
        let cfg = PretrainConfig {
            epochs: 1,
            seed,
            half_weights,
            ..tiny_config(&data, &out)
        };
        pretrain(&cfg, &Device::Cpu).unwrap();
        out
    };
    let run = |name: &str, seed| {
        std::fs::read(run_as(name, seed, false).join("model.safetensors")).unwrap()
    };
    let a = run("a", 1);
    assert_eq!(a, run("b", 1), "same seed, different weights");
    assert_ne!(a, run("c", 2), "different seeds, same weights");

    // --half-weights stores the same run's weights rounded to f16, and they load as a CLIP.
    let half = run_as("half", 1, true);
    let full = candle_core::safetensors::load(tmp.path().join("a/model.safetensors"), &Device::Cpu)
        .unwrap();
    let stored =
        candle_core::safetensors::load(half.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(full.len(), stored.len());
    for (name, t) in &full {
        let h = &stored[name];
        assert_eq!(h.dtype(), candle_core::DType::F16, "{name}");
        let as_f32 = |t: &candle_core::Tensor| {
            let t = t.to_dtype(candle_core::DType::F16).unwrap();
            let t = t.to_dtype(candle_core::DType::F32).unwrap();
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(as_f32(h), as_f32(t), "{name}");
    }
    Clip::load(&half, &Device::Cpu).unwrap();
}

#[test]
fn malformed_caption_line_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("synth");
    write_synth(&data);
    let captions = data.join("captions.jsonl");
    let mut text = std::fs::read_to_string(&captions).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let broken = format!("{}\n{}\n{{\"image\": 3}}\n", lines[0], lines[1]);
    text = broken;
    std::fs::write(&captions, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("pretrain")
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("clip"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:3:", captions.display());
    assert!(stderr.contains(&want), "{stderr}");
}

#[test]
fn existing_checkpoint_is_not_overwritten_without_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("synth"), tmp.path().join("clip"));
    write_synth(&data);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("model.safetensors"), b"keep").unwrap();
    let err = pretrain(&tiny_config(&data, &out), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("--overwrite"), "{err}");
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        b"keep"
    );
}

#[test]
fn every_parameter_gets_a_gradient_from_the_contrastive_loss() {
    use candle_core::Tensor;
    use xrvlm_train::pretrain::init::{init_params, tower_weights};
    use xrvlm_train::pretrain::loss::{clip_loss, soft_targets};
    let cfg = tiny_size().clip_config(40, 8, 39).unwrap();
    let params = init_params(&cfg, 1, &Device::Cpu).unwrap();
    let w = tower_weights(&params, Path::new("init"));
    let clip = Clip::from_weights(cfg.clone(), w, Path::new("no-tokenizer")).unwrap();
    let pixels = Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &Device::Cpu).unwrap();
    let ids = Tensor::new(
        &[[38u32, 5, 6, 39], [38, 7, 39, 39], [38, 9, 10, 39]],
        &Device::Cpu,
    )
    .unwrap();
    let image = clip.vision.image_features(&pixels).unwrap();
    let text = clip.text.text_features(&ids).unwrap();
    let scale = params.get("logit_scale").unwrap();
    let targets = soft_targets(&[0, 1, 2], &Device::Cpu).unwrap();
    let loss = clip_loss(&image, &text, scale.as_tensor(), &targets).unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in params.named() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Unused token rows and positions get zeros; every tensor as a whole must move.
        assert!(norm > 0.0, "{name}: zero gradient");
    }
}

#[test]
fn text_tower_aligned_to_a_locked_resnet_is_an_open_clip_checkpoint() {
    use xrvlm_train::clip::open_clip::MODEL_FILE;
    use xrvlm_train::clip::resnet::ResNetConfig;
    use xrvlm_train::clip::ImageTower;
    use xrvlm_train::pretrain::supervised::{train_supervised, SupervisedConfig};
    let tmp = tempfile::tempdir().unwrap();
    let (data, image, clip_dir) = (
        tmp.path().join("synth"),
        tmp.path().join("image"),
        tmp.path().join("clip"),
    );
    write_synth(&data);
    train_supervised(&SupervisedConfig {
        data: data.clone(),
        eval: None,
        out: image.clone(),
        holdout: Holdout::Last(1),
        tower: ResNetConfig {
            image_size: 32,
            layers: [1, 1, 1, 1],
            width: 4,
            heads: 2,
            embed_dim: 16,
        },
        epochs: 1,
        batch_size: 8,
        lr: 1e-3,
        weight_decay: 0.0,
        warmup_steps: 0,
        min_crop_scale: 1.0,
        attribute_weight: 1.0,
        seed: 3,
        probe_shots: 2,
    })
    .unwrap();
    let cfg = PretrainConfig {
        lock_image: Some(image.clone()),
        ..tiny_config(&data, &clip_dir)
    };
    let report = pretrain(&cfg, &Device::Cpu).unwrap();
    let (first, last) = (report.epoch_losses[0], *report.epoch_losses.last().unwrap());
    assert!(last < first - 0.05, "loss {first} -> {last}");
    assert!(report.zero_shot.held_out.is_some());

    // The written checkpoint is open_clip's layout with OpenAI's names, and loads as a CLIP.
    let clip = Clip::load(&clip_dir, &Device::Cpu).unwrap();
    assert_eq!(clip.config, report.config);
    assert!(matches!(clip.vision, ImageTower::ResNet(_)));
    let written = candle_core::safetensors::load(clip_dir.join(MODEL_FILE), &Device::Cpu).unwrap();
    for name in [
        "transformer.resblocks.1.attn.in_proj_weight",
        "token_embedding.weight",
        "text_projection",
        "logit_scale",
    ] {
        assert!(written.contains_key(name), "{name} missing");
    }
    assert!(!written.keys().any(|n| n.starts_with("text_model.")));
    // The image tower is the locked one, bit for bit.
    let locked = candle_core::safetensors::load(image.join(MODEL_FILE), &Device::Cpu).unwrap();
    for (name, t) in &locked {
        let w = &written[name];
        let same = t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            == w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(same, "{name} changed");
    }
    // The locked tower's checkpoint alone is not a CLIP, and says what to do.
    let err = Clip::load(&image, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("--lock-image"), "{err}");
}
