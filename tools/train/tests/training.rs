//! Training end to end through the real `xrvlm-train` binary on a generated ImageFolder: a tiny
//! XR-VLM's loss falls, an unreadable image is reported and skipped, and a run killed with
//! SIGKILL mid-run resumes from its checkpoint and ends where an uninterrupted run ends.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use xrvlm_train::train::metrics_log::{read_records, RecordKind};

/// Parameters of resumed and uninterrupted runs agree to this (same ops, same order, on CPU).
const RESUME_TOLERANCE: f32 = 1e-5;

fn data(root: &Path) -> PathBuf {
    let dir = root.join("data");
    common::write_image_folder(&dir, 8, 40);
    dir
}

fn train_cmd(data: &Path, out: &Path, epochs: usize) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"));
    cmd.arg("train")
        .arg("--clip")
        .arg(common::tiny_clip())
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args([
            "--shots",
            "5",
            "--parts",
            "2",
            "--prompts",
            "2",
            "--context-len",
            "4",
        ])
        .args([
            "--hidden",
            "32",
            "--batch-size",
            "5",
            "--lr",
            "0.02",
            "--warmup",
            "1",
            "--quiet",
        ])
        .args(["--epochs", &epochs.to_string()]);
    cmd
}

fn train_losses(out: &Path) -> Vec<f64> {
    let (records, _) = read_records(out.join("metrics.jsonl")).unwrap();
    records
        .iter()
        .filter(|r| r.kind == RecordKind::Train)
        .map(|r| r.loss)
        .collect()
}

#[test]
fn tiny_xrvlm_loss_falls_and_bad_images_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let bad = data.join("green_dots/zz_corrupt.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n this is not a png").unwrap();
    let out = tmp.path().join("run");
    let res = train_cmd(&data, &out, 15).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let losses = train_losses(&out);
    assert_eq!(losses.len(), 15);
    let first = losses[..3].iter().sum::<f64>() / 3.0;
    let last = losses[12..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.7 * first, "loss did not fall: {losses:?}");
    for f in [
        "checkpoint.safetensors",
        "curves.png",
        "eval.json",
        "eval.md",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The corrupt file is named in a warning and in failures.txt, and did not stop the run
    // (unless the shot draw left it out, in which case evaluation met it).
    assert!(stderr.contains("zz_corrupt.png"), "{stderr}");
    let failures = std::fs::read_to_string(out.join("failures.txt")).unwrap();
    assert!(failures.contains("zz_corrupt.png"), "{failures}");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.contains("top-1"), "{stdout}");
}

fn params(out: &Path) -> Vec<(String, Vec<f32>)> {
    let ck: xrvlm_train::train::checkpoint::Checkpoint<serde_json::Value> =
        xrvlm_train::train::checkpoint::load(&out.join("checkpoint.safetensors"), &Device::Cpu)
            .unwrap();
    ck.tensors
        .iter()
        .filter(|(n, _)| n.starts_with("param.") || n.starts_with("buffer."))
        .map(|(n, t)| {
            (
                n.clone(),
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect()
}

fn epochs_done(out: &Path) -> Option<usize> {
    xrvlm_train::train::checkpoint::load::<serde_json::Value>(
        &out.join("checkpoint.safetensors"),
        &Device::Cpu,
    )
    .ok()
    .map(|c| c.epochs_done)
}

#[test]
fn killed_run_resumes_from_its_checkpoint() {
    const EPOCHS: usize = 40;
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());

    let straight = tmp.path().join("straight");
    let res = train_cmd(&data, &straight, EPOCHS).output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );

    let killed = tmp.path().join("killed");
    let mut child = train_cmd(&data, &killed, EPOCHS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while train_losses_len(&killed) < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = epochs_done(&killed).expect("a checkpoint survives the kill");
    assert!(
        done < EPOCHS,
        "killed after the run finished ({done} epochs)"
    );

    let res = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .args(["train", "--resume", "--quiet", "--out"])
        .arg(&killed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("after epoch {done}")), "{stderr}");

    // The resumed run logs each epoch once, in order, and ends with the same parameters.
    let (records, _) = read_records(killed.join("metrics.jsonl")).unwrap();
    let epochs: Vec<usize> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Train)
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, (0..EPOCHS).collect::<Vec<_>>());
    let (a, b) = (params(&straight), params(&killed));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let d = va
            .iter()
            .zip(vb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d <= RESUME_TOLERANCE, "{na} differs by {d} after resume");
    }
}

fn train_losses_len(out: &Path) -> usize {
    read_records(out.join("metrics.jsonl"))
        .map(|(r, _)| r.iter().filter(|r| r.kind == RecordKind::Train).count())
        .unwrap_or(0)
}

#[test]
fn resume_without_checkpoint_and_existing_run_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let res = Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
        .args(["train", "--resume", "--out"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("checkpoint.safetensors"), "{err}");

    let data = data(tmp.path());
    let empty = data.join("empty_class");
    std::fs::create_dir_all(&empty).unwrap();
    let res = train_cmd(&data, &tmp.path().join("r"), 2).output().unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("empty_class"), "{err}");
}

/// The committed demo set `tests/fixtures/shapes` (used by the README's first command) is exactly
/// what the generator writes; `XRVLM_BLESS=1` rewrites it.
#[test]
fn committed_shapes_set_matches_the_generator() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shapes");
    if std::env::var_os("XRVLM_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        common::write_image_folder(&committed, 8, 40);
    }
    let tmp = tempfile::tempdir().unwrap();
    common::write_image_folder(tmp.path(), 8, 40);
    for class in common::CLASSES {
        for i in 0..8 {
            let rel = format!("{class}/{i:03}.png");
            let want = std::fs::read(tmp.path().join(&rel)).unwrap();
            let got = std::fs::read(committed.join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(
                got, want,
                "{rel} differs from the generator; rerun with XRVLM_BLESS=1"
            );
        }
    }
}

/// `ablate` runs every head on the same draws, at each shot count, and prints one table; a second
/// invocation reuses the finished runs instead of training again.
#[test]
fn ablate_prints_one_table_and_reuses_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let out = tmp.path().join("ablation");
    let ablate = || {
        Command::new(env!("CARGO_BIN_EXE_xrvlm-train"))
            .arg("ablate")
            .arg("--clip")
            .arg(common::tiny_clip())
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .args([
                "--shot-counts",
                "2,4",
                "--context-len",
                "4",
                "--hidden",
                "16",
                "--batch-size",
                "6",
            ])
            .args(["--epochs", "2", "--warmup", "1", "--lr", "0.02", "--quiet"])
            .args(["--seeds", "1,2", "--part-counts", "1,2"])
            .output()
            .unwrap()
    };
    let first = ablate();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let table = String::from_utf8_lossy(&first.stdout).to_string();
    for label in [
        "zero-shot CLIP",
        "CoOp",
        "vision-only",
        "alignment",
        "XR-VLM (UnA + MPP + CRM), M = P = 2",
    ] {
        assert!(table.contains(label), "{label} missing from\n{table}");
    }
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + 2 * 8, "{table}");
    assert!(rows[1].starts_with("| zero-shot CLIP | 2 |"), "{table}");
    assert!(rows[9].starts_with("| zero-shot CLIP | 4 |"), "{table}");
    assert_eq!(
        std::fs::read_to_string(out.join("ablation.md"))
            .unwrap()
            .trim(),
        table.trim()
    );
    let stamp = std::fs::metadata(out.join("4shot/xrvlm-m2/seed2/checkpoint.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    let second = ablate();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        table,
        "same table from the finished runs"
    );
    let again = std::fs::metadata(out.join("4shot/xrvlm-m2/seed2/checkpoint.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(stamp, again, "finished runs are not retrained");
}
