//! Bad input gives an error that names the file and what is wrong: a checkpoint with a missing or
//! mis-shaped tensor, a `config.json` with an unknown activation, a corrupt `tokenizer.json`, an
//! unreadable image.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use xrvlm_train::clip::Clip;

/// A copy of the tiny fixture that a test may damage.
fn copy_fixture(dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(common::tiny_clip().join(f), dst.join(f)).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    match Clip::load(dir, &Device::Cpu) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut w = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut w);
    candle_core::safetensors::save(&w, &path).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    rewrite_weights(tmp.path(), |w| {
        w.remove("text_model.encoder.layers.1.mlp.fc2.weight");
    });
    let err = load_err(tmp.path());
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        err.contains("text_model.encoder.layers.1.mlp.fc2.weight"),
        "{err}"
    );
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    rewrite_weights(tmp.path(), |w| {
        w.insert(
            "visual_projection.weight".into(),
            Tensor::zeros((24, 31), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_err(tmp.path());
    assert!(err.contains("visual_projection.weight"), "{err}");
    assert!(
        err.contains("[24, 31]") && err.contains("[24, 32]"),
        "{err}"
    );
}

#[test]
fn unknown_activation_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    let path = tmp.path().join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("quick_gelu", "swishy");
    std::fs::write(&path, text).unwrap();
    let err = load_err(tmp.path());
    assert!(
        err.contains("config.json") && err.contains("hidden_act") && err.contains("swishy"),
        "{err}"
    );
}

#[test]
fn corrupt_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    std::fs::write(
        tmp.path().join("tokenizer.json"),
        "{\"version\": \"1.0\", \"model\": ",
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(
        err.contains("tokenizer.json") && err.contains("not a valid tokenizer.json"),
        "{err}"
    );
}

#[test]
fn corrupt_weights_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    std::fs::write(
        tmp.path().join("model.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{bad",
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(
        err.contains("model.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

#[test]
fn unreadable_image_is_named_by_embed() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("embed")
        .arg(common::tiny_clip())
        .arg("--image")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.jpg"), "{err}");
}

#[test]
fn embed_into_a_closed_pipe_exits_quietly() {
    use std::process::Stdio;
    // The reader goes away before the command writes (`xrvlm-train embed … | head -c 0`):
    // the write fails with a broken pipe, which is the reader's choice, not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .arg("embed")
        .arg(common::tiny_clip())
        .args(["--text", "a bird."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
