//! Profile parsing: the committed profiles, and errors that name file, line and key.

use std::path::{Path, PathBuf};

use super::*;
use crate::allowed::SpeciesList;

/// A complete minimal profile; tests edit one line of it.
const MINIMAL: &str = r#"[deployment]
id = "test-01"
location_name = "Test bench"
latitude = -27.5
longitude = 153.0
utc_offset = "+10:00"

[source]
kind = "v4l2"
fps = 5

[model]
bundle = "bundle"

[output]
folder = "out"
"#;

fn parse(text: &str) -> Result<Profile, ConfigError> {
    Profile::parse(text, Path::new("firmware-config/x.toml"))
}

/// The error's position and key, and its message.
fn invalid(text: &str) -> (Option<(usize, usize)>, String, String) {
    match parse(text) {
        Err(e @ ConfigError::Invalid { .. }) => {
            let message = e.to_string();
            let ConfigError::Invalid { position, key, .. } = e else {
                unreachable!()
            };
            (position.map(|p| (p.line, p.column)), key, message)
        }
        other => panic!("expected an invalid profile, got {other:?}"),
    }
}

#[test]
fn committed_profiles_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-config");
    for name in [
        "jetson-orin-nano.toml",
        "raspberry-pi-5.toml",
        "desktop-demo.toml",
    ] {
        let path = dir.join(name);
        let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(profile.path(), path);
    }
}

#[test]
fn desktop_demo_classifies_the_demo_samples_with_the_demo_bundle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-config");
    let profile = Profile::load(&dir.join("desktop-demo.toml")).unwrap();
    assert_eq!(profile.model.bundle, dir.join("../models/demo"));
    assert_eq!(profile.model.precision, crate::engine::Precision::Int8);
    let SourceConfig::Folder(folder) = &profile.source else {
        panic!("expected a folder source, got {:?}", profile.source)
    };
    assert!(folder.path.join("blank_0.png").is_file());
    assert!(matches!(profile.display, DisplayConfig::Png { .. }));
    let manifest =
        crate::bundle::manifest::Manifest::load(&profile.model.bundle.join("manifest.toml"))
            .unwrap();
    profile.check_classes(manifest.labels()).unwrap();
}

#[test]
fn minimal_profile_gets_the_documented_defaults() {
    let p = parse(MINIMAL).unwrap();
    assert_eq!(p.model.bundle, PathBuf::from("firmware-config/bundle"));
    assert_eq!(p.output.folder, PathBuf::from("firmware-config/out"));
    assert_eq!(p.model.top_k, 5);
    assert_eq!(p.model.threads, None);
    assert_eq!(p.decision.threshold, DEFAULT_THRESHOLD);
    assert_eq!(p.decision.blank_label, "blank");
    assert_eq!(p.output.save_frames, SaveFrames::Events);
    assert_eq!(p.output.storage_budget, ByteSize(1 << 30));
    assert_eq!(p.display, DisplayConfig::None);
    assert_eq!(p.deployment.utc_offset.minutes(), 600);
    let SourceConfig::V4l2(v) = &p.source else {
        panic!("expected v4l2")
    };
    assert_eq!(v.device, PathBuf::from("/dev/video0"));
    assert_eq!(v.pixel_format, PixelFormat::Mjpeg);
}

#[test]
fn trusted_keys_are_public_keys_and_a_required_signature_needs_one() {
    let secret = format!("ed25519-secret:{}", "3b".repeat(32));
    let key = crate::bundle::signing::SecretKey::parse(&secret)
        .unwrap()
        .public()
        .to_string();
    let p = parse(&MINIMAL.replace(
        "bundle = \"bundle\"",
        &format!("bundle = \"bundle\"\nrequire_signature = true\ntrusted_keys = [\"{key}\"]"),
    ))
    .unwrap();
    assert!(p.model.trust_policy().is_required());
    assert_eq!(p.model.trust_policy().trusted()[0].to_string(), key);
    assert!(!parse(MINIMAL).unwrap().model.trust_policy().is_required());
    let (_, key_name, message) = invalid(&MINIMAL.replace(
        "bundle = \"bundle\"",
        "bundle = \"bundle\"\nrequire_signature = true",
    ));
    assert_eq!(key_name, "model.trusted_keys", "{message}");
    let (_, _, message) = invalid(&MINIMAL.replace(
        "bundle = \"bundle\"",
        "bundle = \"bundle\"\ntrusted_keys = [\"ed25519:00\"]",
    ));
    assert!(message.contains("64 hex digits"), "{message}");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = MINIMAL.replace("fps = 5", "fpss = 5");
    let (position, key, message) = invalid(&text);
    assert_eq!(position, Some((10, 1)));
    assert_eq!(key, "source.fpss");
    assert!(
        message.starts_with("firmware-config/x.toml:10:1: source.fpss: unknown field `fpss`"),
        "{message}"
    );
    assert!(message.contains("expected one of"), "{message}");
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let text = MINIMAL.replace("fps = 5", "fps = \"five\"");
    let (position, key, message) = invalid(&text);
    assert_eq!(position, Some((10, 7)));
    assert_eq!(key, "source.fps");
    assert!(
        message.contains("invalid type: string \"five\""),
        "{message}"
    );
}

#[test]
fn out_of_range_value_names_file_line_and_key() {
    let text = MINIMAL.replace("latitude = -27.5", "latitude = -127.5");
    let (position, key, message) = invalid(&text);
    assert_eq!(position, Some((4, 12)));
    assert_eq!(key, "deployment.latitude");
    assert_eq!(
        message,
        "firmware-config/x.toml:4:12: deployment.latitude: must be between -90 and 90, got -127.5"
    );
}

#[test]
fn per_class_threshold_outside_zero_one_is_refused_at_its_line() {
    let text = format!("{MINIMAL}\n[decision.thresholds]\nblank = 1.5\n");
    let (position, key, _) = invalid(&text);
    assert_eq!(position, Some((19, 9)));
    assert_eq!(key, "decision.thresholds.blank");
}

#[test]
fn key_of_another_source_kind_is_refused() {
    let text = MINIMAL.replace("fps = 5", "fps = 5\npath = \"/srv/images\"");
    let (position, key, message) = invalid(&text);
    assert_eq!(position, Some((11, 8)));
    assert_eq!(key, "source.path");
    assert!(
        message.contains("does not apply to kind = \"v4l2\""),
        "{message}"
    );
}

#[test]
fn bad_utc_offset_and_byte_size_say_what_is_expected() {
    let text = MINIMAL.replace("\"+10:00\"", "\"Australia/Brisbane\"");
    let (position, key, message) = invalid(&text);
    assert_eq!(
        (position, key.as_str()),
        (Some((6, 14)), "deployment.utc_offset")
    );
    assert!(message.contains("expected \"+HH:MM\""), "{message}");

    let text = format!("{MINIMAL}storage_budget = \"2 gigs\"\n");
    let (position, key, message) = invalid(&text);
    assert_eq!(
        (position, key.as_str()),
        (Some((17, 18)), "output.storage_budget")
    );
    assert!(message.contains("e.g. \"2 GiB\""), "{message}");
}

#[test]
fn missing_required_display_key_is_placed_at_its_table() {
    let text = format!("{MINIMAL}\n[display]\nkind = \"png\"\n");
    let (position, key, message) = invalid(&text);
    assert_eq!(position, Some((18, 2)));
    assert_eq!(key, "display.path");
    assert!(
        message.contains("required when kind = \"png\""),
        "{message}"
    );
}

#[test]
fn syntax_error_names_its_line() {
    let text = MINIMAL.replace("fps = 5", "fps = = 5");
    let (position, _, _) = invalid(&text);
    assert_eq!(position.map(|p| p.0), Some(10));
}

#[test]
fn thresholds_for_classes_the_bundle_lacks_are_refused() {
    let text = format!("{MINIMAL}\n[decision.thresholds]\nbartail_finch = 0.4\nwombat = 0.9\n");
    let profile = parse(&text).unwrap();
    profile
        .check_classes(["blank", "bartail_finch", "wombat"])
        .unwrap();
    let err = profile
        .check_classes(["blank", "bartail_finch"])
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "firmware-config/x.toml:20:10: decision.thresholds.wombat: \"wombat\" is not a class"
        ),
        "{message}"
    );
}

#[test]
fn unreadable_file_names_the_file() {
    let err = Profile::load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn synthetic_framing_is_scene_or_crop() {
    let synthetic = |framing: &str| {
        MINIMAL.replace(
            "kind = \"v4l2\"\nfps = 5",
            &format!("kind = \"synthetic\"\nspecies = 3\n{framing}"),
        )
    };
    let framing_of = |text: &str| match parse(text).expect("a valid profile").source {
        SourceConfig::Synthetic(s) => s.framing,
        other => panic!("expected a synthetic source, got {other:?}"),
    };
    assert_eq!(framing_of(&synthetic("")), xrvlm_synth::Framing::Scene);
    assert_eq!(
        framing_of(&synthetic("framing = \"crop\"")),
        xrvlm_synth::Framing::Crop
    );
    let (_, key, message) = invalid(&synthetic("framing = \"zoom\""));
    assert_eq!(key, "source.framing");
    assert!(message.contains("\"scene\""), "{message}");
}

#[test]
fn a_site_species_list_is_allowed_or_excluded_not_both() {
    let allowed = parse(&format!(
        "{MINIMAL}\n[decision]\nallowed_species = [\"bartail_finch\", \"Greybill Chat\"]\n"
    ))
    .unwrap();
    assert_eq!(
        allowed.decision.species_list(),
        Some(SpeciesList::Allow(vec![
            "bartail_finch".into(),
            "Greybill Chat".into()
        ]))
    );
    let none = parse(MINIMAL).unwrap();
    assert_eq!(none.decision.species_list(), None);
    let both =
        format!("{MINIMAL}\n[decision]\nallowed_species = [\"a\"]\nexcluded_species = [\"b\"]\n");
    let (_, key, message) = invalid(&both);
    assert_eq!(key, "decision.excluded_species");
    assert!(message.contains("not both"), "{message}");
}
