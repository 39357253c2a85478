//! A site's species list (SpeciesNet's geofence) on the demo bundle: an excluded species is
//! never answered, an allow-list answers only its species and blank, and the probabilities of
//! what may be answered still sum to 1; `xrvlm classify --exclude` answers the same as the
//! library, and a name the bundle lacks is refused with the bundle's names.

use crate::common::{self, demo_bundle};

use std::path::PathBuf;

use xrvlm_runtime::allowed::SpeciesList;
use xrvlm_runtime::bundle::Bundle;
use xrvlm_runtime::classifier::Classifier;
use xrvlm_runtime::engine::{PlanOptions, Precision};
use xrvlm_runtime::image_io::load_rgb;

fn classifier() -> Classifier {
    let options = PlanOptions {
        precision: Precision::Fp32,
        threads: 1.try_into().unwrap(),
    };
    Classifier::new(Bundle::open(&demo_bundle()).unwrap(), options).unwrap()
}

/// The demo's sample frames (labelled in their names).
fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo_bundle().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files
}

#[test]
fn an_excluded_species_is_never_answered_and_the_rest_sum_to_one() {
    let free = classifier();
    let classes = free.bundle().manifest().classes.len();
    let mut checked = 0;
    for path in samples().iter().take(12) {
        let image = load_rgb(path).unwrap();
        let before = free.classify(&image, classes).unwrap();
        let best = &before.top[0];
        if best.label == "blank" {
            continue;
        }
        // Exclude the species the model answers: the rest share its probability.
        let mut restricted = classifier();
        restricted
            .restrict(&SpeciesList::Exclude(vec![best.label.clone()]), "blank")
            .unwrap();
        let after = restricted.classify(&image, classes).unwrap();
        assert_eq!(after.top.len(), classes - 1, "{}", path.display());
        assert!(after.top.iter().all(|c| c.label != best.label));
        assert_ne!(after.best(), best.index);
        let total: f32 = after.top.iter().map(|c| c.probability).sum();
        assert!((total - 1.0).abs() < 1e-5, "{}: {total}", path.display());
        // Renormalised: each remaining class's probability over what the others had.
        let others = 1.0 - best.probability;
        for c in &after.top {
            let was = before.top.iter().find(|b| b.index == c.index).unwrap();
            let want = was.probability / others;
            assert!(
                (c.probability - want).abs() <= 1e-4 * want.max(1e-3),
                "{c:?} vs {want}"
            );
        }
        // The logits are the model's, untouched.
        assert_eq!(after.logits, before.logits);
        checked += 1;
    }
    assert!(checked >= 8, "the samples are mostly birds: {checked}");
}

#[test]
fn an_allow_list_answers_only_its_species_and_blank() {
    let mut restricted = classifier();
    let allowed = ["bartail_finch", "Greybill Chat"];
    restricted
        .restrict(
            &SpeciesList::Allow(allowed.iter().map(|s| s.to_string()).collect()),
            "blank",
        )
        .unwrap();
    for path in samples() {
        let p = restricted.classify(&load_rgb(&path).unwrap(), 13).unwrap();
        let labels: Vec<&str> = p.top.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels.len(), 3, "{labels:?}");
        assert!(labels
            .iter()
            .all(|l| ["bartail_finch", "greybill_chat", "blank"].contains(l)));
        let total: f32 = p.top.iter().map(|c| c.probability).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}

#[test]
fn classify_excludes_on_the_command_line_and_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let run = common::xrvlm()
        .arg("classify")
        .arg(demo_bundle().join("samples"))
        .arg("--bundle")
        .arg(demo_bundle())
        .args([
            "--exclude",
            "bartail_finch,greybill_chat",
            "--top-k",
            "13",
            "-q",
        ])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), samples().len());
    for row in &rows {
        let top = row["top"].as_array().unwrap();
        assert_eq!(top.len(), 11);
        assert!(top
            .iter()
            .all(|c| c["label"] != "bartail_finch" && c["label"] != "greybill_chat"));
    }
    let refused = common::xrvlm()
        .arg("classify")
        .arg(demo_bundle().join("samples"))
        .arg("--bundle")
        .arg(demo_bundle())
        .args(["--allow", "kiwi"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        text.contains("\"kiwi\" is not a class") && text.contains("bartail_finch"),
        "{text}"
    );
}
