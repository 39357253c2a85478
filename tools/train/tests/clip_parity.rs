//! Parity with the reference implementation: transformers' `CLIPModel` on tiny random configs
//! (`fixtures/clip-tiny-*`, made by `tools/make_clip_fixture.py`). Our towers, our tokenizer and
//! the `xrvlm-train embed` command must reproduce its outputs within 1e-4 max abs difference,
//! for both the `quick_gelu` (legacy argmax EOT) and the `gelu` (eos-id EOT) configs.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use xrvlm_train::clip::Clip;

/// Stated tolerance of fp32 parity with transformers.
const TOLERANCE: f32 = 1e-4;

const FIXTURES: [&str; 2] = ["clip-tiny-quick-gelu", "clip-tiny-gelu"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected(dir: &Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let d = (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap()).unwrap();
    d.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn assert_close(what: &str, fixture: &str, got: &Tensor, want: &Tensor) {
    let d = max_abs_diff(got, want);
    eprintln!("{fixture}: {what}: max |diff| vs transformers = {d:e}");
    assert!(
        d <= TOLERANCE,
        "{fixture}: {what} differs from transformers by {d:e} (> {TOLERANCE:e})"
    );
}

#[test]
fn towers_match_transformers() {
    for name in FIXTURES {
        let dir = fixture(name);
        let exp = expected(&dir);
        let clip = Clip::load(&dir, &Device::Cpu).unwrap();
        let pixels = &exp["pixel_values"];
        assert_close(
            "image_embeds",
            name,
            &clip.image_features(pixels).unwrap(),
            &exp["image_embeds"],
        );
        let streams = clip.vision.streams(pixels).unwrap();
        assert_close(
            "block L-2 tokens (X)",
            name,
            &streams.x,
            &exp["vision_hidden_l2"],
        );
        assert_close(
            "projected tokens (F)",
            name,
            &streams.f,
            &exp["vision_tokens_proj"],
        );
        let ids = &exp["input_ids"];
        let text = clip.text_features(ids).unwrap();
        assert_close("text_embeds", name, &text, &exp["text_embeds"]);
        assert_close(
            "text_embeds (no mask)",
            name,
            &text,
            &exp["text_embeds_nomask"],
        );
        let ids_u32 = ids.to_dtype(DType::U32).unwrap().to_vec2::<u32>().unwrap();
        let eot: Vec<i64> = clip
            .text
            .eot_positions(&ids_u32)
            .iter()
            .map(|&p| p as i64)
            .collect();
        assert_eq!(
            eot,
            exp["eot_positions"].to_vec1::<i64>().unwrap(),
            "{name}: EOT positions"
        );
    }
}

#[test]
fn tokenizer_matches_transformers() {
    for name in FIXTURES {
        let dir = fixture(name);
        let json = expected_json(&dir);
        let clip = Clip::load(&dir, &Device::Cpu).unwrap();
        let tok = clip.tokenizer().unwrap();
        let cases = json["tokenizer"]["cases"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let ids = tok.encode(text).unwrap();
            let full = id_list(&case["ids"]);
            if full.len() <= tok.context_length() {
                assert_eq!(ids, full, "{name}: ids of {text:?}");
            } else {
                assert!(
                    tok.encode_untruncated(text).is_err(),
                    "{name}: {text:?} is too long"
                );
            }
            let padded = tok
                .pad_to_tensor(&[ids], &Device::Cpu)
                .unwrap()
                .to_vec2::<u32>()
                .unwrap();
            assert_eq!(
                padded[0],
                id_list(&case["ids_padded_77"]),
                "{name}: padded ids of {text:?}"
            );
        }
    }
}

fn expected_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn id_list(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn embed_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"));
    cmd.arg("embed").arg(dir);
    cmd
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

#[test]
fn embed_command_matches_transformers() {
    for name in FIXTURES {
        let dir = fixture(name);
        let exp = expected(&dir);
        let tmp = tempfile::tempdir().unwrap();
        let pixels = tmp.path().join("pixels.safetensors");
        candle_core::safetensors::save(
            &std::collections::HashMap::from([(
                "pixel_values".to_string(),
                exp["pixel_values"].clone(),
            )]),
            &pixels,
        )
        .unwrap();
        let mut cmd = embed_cmd(&dir);
        cmd.arg("--pixels").arg(&pixels);
        for row in exp["input_ids"]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap()
        {
            let ids: Vec<String> = row.iter().map(u32::to_string).collect();
            cmd.arg("--token-ids").arg(ids.join(","));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let image = Tensor::new(rows(&json["image_embeds"]), &Device::Cpu).unwrap();
        let text = Tensor::new(rows(&json["text_embeds"]), &Device::Cpu).unwrap();
        assert_close("embed image_embeds", name, &image, &exp["image_embeds"]);
        assert_close("embed text_embeds", name, &text, &exp["text_embeds"]);

        // --text goes through tokenizer.json and must give the same features as the ids.
        let first = expected_json(&dir)["model_texts"][0]
            .as_str()
            .unwrap()
            .to_string();
        let out = embed_cmd(&dir).arg("--text").arg(&first).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = Tensor::new(rows(&json["text_embeds"]), &Device::Cpu).unwrap();
        assert_close(
            "embed --text",
            name,
            &text,
            &exp["text_embeds"].narrow(0, 0, 1).unwrap(),
        );
        assert_eq!(json["image_embeds"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn embed_image_uses_the_shared_preprocessing() {
    let dir = fixture(FIXTURES[0]);
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("frame.png");
    let img = image::RgbImage::from_fn(50, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 128])
    });
    img.save(&png).unwrap();
    let out = embed_cmd(&dir).arg("--image").arg(&png).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = Tensor::new(rows(&json["image_embeds"]), &Device::Cpu).unwrap();
    let clip = Clip::load(&dir, &Device::Cpu).unwrap();
    let pre = xrvlm_runtime::preprocess::Preprocess::for_image_size(
        clip.config.vision.image_size() as u32,
    );
    let pixels = Tensor::from_vec(pre.apply(&img).unwrap(), (1, 3, 32, 32), &Device::Cpu).unwrap();
    let want = clip.image_features(&pixels).unwrap();
    assert_eq!(max_abs_diff(&got, &want), 0.0);
}
