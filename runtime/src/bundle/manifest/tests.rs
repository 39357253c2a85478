//! Manifest parsing: the contract's example, and each refusal naming its field.

use std::path::Path;

use super::*;

const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn example() -> String {
    format!(
        r#"
format_version = 1

[model]
name = "demo"
version = "1"
created = "2026-11-21T03:00:00Z"
description = "test"

[backbone]
architecture = "clip-vit"
image_size = 64
patch_size = 8
width = 64
layers = 4
heads = 4
embed_dim = 64
activation = "quick_gelu"

[head]
kind = "xrvlm"
parts = 4
prompts = 4
embed_dim = 64
crm_dim = 32
hidden = 256
feature_scale = 64.0

[preprocess]
resize_shorter = 73
crop = 64
interpolation = "bilinear"
mean = [0.48145466, 0.4578275, 0.40821073]
std = [0.26862954, 0.26130258, 0.27577711]

[[classes]]
label = "bartail_finch"
common_name = "bartail finch"

[[classes]]
label = "crested_tit"

[[files]]
path = "visual.onnx"
role = "visual"
precision = "fp32"
sha256 = "{SHA}"
bytes = 123

[[files]]
path = "visual.int8.onnx"
role = "visual"
precision = "int8"
sha256 = "{SHA}"
bytes = 12

[[files]]
path = "prompts.safetensors"
role = "prompts"
sha256 = "{SHA}"
bytes = 5

[[files]]
path = "golden/golden.json"
role = "golden"
sha256 = "{SHA}"
bytes = 2

[metrics]
eval_set = "out/world1-seed3"
eval_images = 504
fp32_top1 = 0.61
fp32_top5 = 0.90

[provenance]
trainer = "xrvlm-train 0.1.0"
checkpoint_sha256 = "{SHA}"
backbone = "mini-clip"
dataset_fingerprint = "abc"
"#
    )
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new("bundle/manifest.toml"))
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_contract_example_parses_with_its_sizes() {
    let m = parse(&example()).unwrap();
    let dims = m.crm_dims().unwrap();
    assert_eq!(
        (dims.classes(), dims.parts(), dims.prompts(), dims.embed()),
        (2, 4, 4, 64)
    );
    assert_eq!(m.preprocess.mean[0], 0.48145466_f64 as f32);
    assert_eq!(
        m.visual_file(ModelPrecision::Int8).unwrap().path,
        "visual.int8.onnx"
    );
    assert_eq!(m.prompts_file().unwrap().path, "prompts.safetensors");
    assert_eq!(
        m.labels().collect::<Vec<_>>(),
        ["bartail_finch", "crested_tit"]
    );
}

#[test]
fn serializing_and_parsing_again_gives_the_same_manifest() {
    let m = parse(&example()).unwrap();
    let again = parse(&m.to_toml().unwrap()).unwrap();
    assert_eq!(m, again);
}

#[test]
fn a_newer_format_version_says_which_versions_this_runtime_reads() {
    // The newer format may add tables this runtime does not know: the version wins.
    let text = example().replace("format_version = 1", "format_version = 3\n[future]\nx = 1");
    let err = error_of(&text);
    assert!(err.contains("bundle/manifest.toml"), "{err}");
    assert!(err.contains("format_version 3 is newer"), "{err}");
    assert!(err.contains("reads format_version 1 to 2"), "{err}");
    assert!(err.contains("update xrvlm"), "{err}");
    let err = error_of(&example().replace("format_version = 1", "format_version = 0"));
    assert!(
        err.contains("format_version 0 is not a valid version"),
        "{err}"
    );
    let err = error_of(&example().replace("format_version = 1\n", ""));
    assert!(err.contains("format_version is missing"), "{err}");
}

#[test]
fn unknown_and_missing_keys_are_named() {
    let err = error_of(&example().replace("hidden = 256", "hidden = 256\nhiden = 3"));
    assert!(err.contains("hiden"), "{err}");
    let err = error_of(&example().replace("crm_dim = 32\n", ""));
    assert!(err.contains("crm_dim"), "{err}");
    let err = error_of(&example().replace("\"int8\"", "\"int4\""));
    assert!(err.contains("int4"), "{err}");
}

#[test]
fn inconsistent_values_are_refused_by_field() {
    let cases = [
        ("crop = 64", "crop = 60", "preprocess.crop"),
        ("parts = 4", "parts = 0", "head.parts"),
        (
            "embed_dim = 64\nactivation",
            "embed_dim = 32\nactivation",
            "head.embed_dim",
        ),
        ("crested_tit", "bartail_finch", "classes[1].label"),
        (
            "feature_scale = 64.0",
            "feature_scale = -1.0",
            "head.feature_scale",
        ),
        ("resize_shorter = 73", "resize_shorter = 10", "preprocess"),
        (
            "path = \"prompts.safetensors\"",
            "path = \"../prompts.safetensors\"",
            "files[2].path",
        ),
        ("role = \"prompts\"", "role = \"golden\"", "files[2].path"),
        (
            "path = \"golden/golden.json\"",
            "path = \"golden/other.json\"",
            "golden/golden.json",
        ),
        (
            "precision = \"int8\"",
            "precision = \"fp32\"",
            "files[1].precision",
        ),
    ];
    for (from, to, field) in cases {
        let text = example().replacen(from, to, 1);
        assert_ne!(text, example(), "{from} not in the example");
        let err = error_of(&text);
        assert!(err.contains(field), "{from} -> {to}: {err}");
    }
}

#[test]
fn a_bad_digest_is_a_syntax_error_naming_the_key() {
    let err = error_of(&example().replacen(SHA, "abc", 1));
    assert!(err.contains("sha256"), "{err}");
}

const OPEN_WORLD: &str = r#"
[open_world]
score = "energy"
threshold = 4.25
target_recall = 0.95
recall = 0.9523
calibration_set = "demo-fresh"
calibration_images = 480
blank_label = "crested_tit"
"#;

/// The example with an `[open_world]` section before `[provenance]`, in format 2.
fn with_open_world(section: &str) -> String {
    example()
        .replace("format_version = 1", "format_version = 2")
        .replace("\n[provenance]", &format!("{section}\n[provenance]"))
}

#[test]
fn a_format_1_manifest_loads_and_is_written_as_format_1() {
    let mut m = parse(&example()).unwrap();
    assert_eq!(m.format_version, 1);
    assert_eq!(m.required_format(), (1, None));
    // Whatever the field says, a manifest without newer fields is written as format 1, which
    // every runtime since format 1 reads.
    m.format_version = FORMAT_VERSION;
    assert!(m.to_toml().unwrap().starts_with("format_version = 1\n"));
}

#[test]
fn a_field_newer_than_the_manifests_format_is_refused_by_name() {
    let text = with_open_world(OPEN_WORLD).replace("format_version = 2", "format_version = 1");
    let err = error_of(&text);
    assert!(
        err.contains(
            "open_world: came with format_version 2, but this manifest says format_version 1"
        ),
        "{err}"
    );
    let mut m = parse(&example()).unwrap();
    m.classes[1].taxonomy = Some(crate::taxonomy::Taxonomy {
        genus: Some("Parus".into()),
        ..Default::default()
    });
    let text = m.to_toml().unwrap();
    assert!(text.starts_with("format_version = 2\n"), "{text}");
    assert_eq!(
        parse(&text).unwrap().classes[1].taxonomy,
        m.classes[1].taxonomy
    );
    let err = error_of(&text.replace("format_version = 2", "format_version = 1"));
    assert!(
        err.contains("classes[1].taxonomy: came with format_version 2"),
        "{err}"
    );
}

#[test]
fn an_open_world_section_round_trips_and_an_older_manifest_has_none() {
    let m = parse(&with_open_world(OPEN_WORLD)).unwrap();
    let ow = m.open_world.as_ref().unwrap();
    assert_eq!(ow.score, ScoreKind::Energy);
    assert_eq!((ow.threshold, ow.target_recall), (4.25, 0.95));
    assert_eq!(ow.blank_label.as_deref(), Some("crested_tit"));
    let text = m.to_toml().unwrap();
    assert!(text.contains("[open_world]"), "{text}");
    assert_eq!(parse(&text).unwrap(), m);
    // A manifest from before the section: it loads, with no rejection rule.
    let older = parse(&example()).unwrap();
    assert_eq!(older.open_world, None);
    assert!(!older.to_toml().unwrap().contains("open_world"));
}

#[test]
fn a_bad_open_world_section_is_refused_by_field() {
    let cases = [
        (
            "threshold = 4.25",
            "threshold = nan",
            "open_world.threshold",
        ),
        (
            "target_recall = 0.95",
            "target_recall = 0.0",
            "open_world.target_recall",
        ),
        ("recall = 0.9523", "recall = 1.5", "open_world.recall"),
        (
            "blank_label = \"crested_tit\"",
            "blank_label = \"empty\"",
            "open_world.blank_label",
        ),
        ("score = \"energy\"", "score = \"msp\"", "msp"),
        ("recall = 0.9523", "recall = 0.9523\nrecal = 1", "recal"),
    ];
    for (from, to, field) in cases {
        let text = with_open_world(&OPEN_WORLD.replacen(from, to, 1));
        assert_ne!(
            text,
            with_open_world(OPEN_WORLD),
            "{from} not in the section"
        );
        let err = error_of(&text);
        assert!(err.contains(field), "{from} -> {to}: {err}");
    }
}

/// A `[[files]]` entry of role open_world at `path`.
fn prototypes_file(path: &str) -> String {
    format!(
        "\n[[files]]\npath = \"{path}\"\nrole = \"open_world\"\nsha256 = \"{SHA}\"\nbytes = 9\n"
    )
}

#[test]
fn a_prototype_score_and_the_prototypes_file_come_together() {
    let with_file = |text: String, path: &str| {
        text.replace(
            "\n[metrics]",
            &format!("{}\n[metrics]", prototypes_file(path)),
        )
    };
    let section = OPEN_WORLD.replace("\"energy\"", "\"part_prototype\"");
    let err = error_of(&with_open_world(&section));
    assert!(err.contains("needs a file of role open_world"), "{err}");
    let m = parse(&with_file(
        with_open_world(&section),
        "open_world.safetensors",
    ))
    .unwrap();
    assert_eq!(m.open_world_file().unwrap().path, "open_world.safetensors");
    let nearest = OPEN_WORLD.replace("\"energy\"", "\"nearest_prototype\"");
    assert!(parse(&with_file(with_open_world(&nearest), "p.safetensors")).is_ok());
    let err = error_of(&with_file(with_open_world(OPEN_WORLD), "p.safetensors"));
    assert!(err.contains("listed without"), "{err}");
    let err = error_of(&with_file(example(), "p.safetensors"));
    assert!(err.contains("listed without"), "{err}");
    let two = with_file(
        with_file(with_open_world(&section), "a.safetensors"),
        "b.safetensors",
    );
    assert!(error_of(&two).contains("at most one file of role open_world"));
}

#[test]
fn part_maps_name_a_tensor_of_an_image_model_only() {
    let with_maps = |after: &str, name: &str| {
        example()
            .replacen("format_version = 1", "format_version = 2", 1)
            .replacen(after, &format!("{after}\npart_maps = \"{name}\""), 1)
    };
    let text = with_maps("precision = \"int8\"", "una/maps");
    let manifest = parse(&text).unwrap();
    assert_eq!(manifest.files[1].part_maps.as_deref(), Some("una/maps"));
    assert_eq!(manifest.files[0].part_maps, None);
    let again = parse(&manifest.to_toml().unwrap()).unwrap();
    assert_eq!(again, manifest);
    let err = error_of(&with_maps("role = \"prompts\"", "una/maps"));
    assert!(err.contains("files[2].part_maps"), "{err}");
    assert!(err.contains("role visual"), "{err}");
    let err = error_of(&with_maps("precision = \"int8\"", " "));
    assert!(err.contains("files[1].part_maps"), "{err}");
}

#[test]
fn part_maps_came_with_format_2() {
    let text = example().replacen(
        "precision = \"int8\"",
        "precision = \"int8\"\npart_maps = \"una/maps\"",
        1,
    );
    let manifest = parse(&text.replacen("format_version = 1", "format_version = 2", 1)).unwrap();
    assert_eq!(
        manifest.required_format(),
        (2, Some("files[1].part_maps".to_string()))
    );
    assert!(manifest
        .to_toml()
        .unwrap()
        .starts_with("format_version = 2"));
    let err = error_of(&text);
    assert!(err.contains("files[1].part_maps"), "{err}");
    assert!(err.contains("format_version 2"), "{err}");
}
