//! The models committed under `models/` stay readable by the code that made them: the
//! pre-trained mini-CLIP (a ModifiedResNet in open_clip's layout, stored in f16) loads and
//! embeds, and the demo XR-VLM (whose backbone is found through its relative path) evaluates on
//! freshly generated synthetic images of its species.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use xrvlm_train::clip::{Clip, ImageTower};

/// The repository's `models/` directory.
fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn xrvlm_train() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"));
    // The demo checkpoint names its backbone as `models/mini-clip`, relative to the repository.
    cmd.current_dir(models().join(".."));
    cmd
}

#[test]
fn mini_clip_loads_as_an_open_clip_resnet_checkpoint() {
    let clip = Clip::load(&models().join("mini-clip"), &Device::Cpu).unwrap();
    assert!(matches!(clip.vision, ImageTower::ResNet(_)));
    assert_eq!(clip.config.vision.image_size(), 96);
    assert_eq!(clip.config.projection_dim, 128);
    let out = xrvlm_train()
        .args(["embed", "models/mini-clip", "--text"])
        .arg("a bird with a grey conical beak and a short black crest.")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = json["text_embeds"][0].as_array().unwrap();
    assert_eq!(text.len(), 128);
}

#[test]
fn demo_xrvlm_evaluates_on_fresh_images_of_its_species() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let synth = xrvlm_train()
        .args(["synth", "--world", "1", "--seed", "77", "--classes", "12"])
        .args(["--size", "110", "--framing", "crop"])
        .args(["--per-class", "2", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let json = dir.path().join("eval.json");
    let eval = xrvlm_train()
        .args(["eval", "models/demo-xrvlm/checkpoint.safetensors", "--data"])
        .arg(&data)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // 12 species × 2 birds plus blank frames, scored against all 13 classes.
    let per_class = report["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 13, "{report}");
    let images: u64 = per_class.iter().map(|c| c["total"].as_u64().unwrap()).sum();
    assert!(images >= 24, "{report}");
    let top1 = report["top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1), "{report}");
}
