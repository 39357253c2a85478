//! `xrvlm export-camtrap`: a package written from a detection log that the field loop's own
//! parts produced (profile, decisions, events, log) validates against the Camtrap DP 1.0.2
//! schemas, and the validator rejects broken packages naming the column.

use crate::camtrap_schema;
use crate::common;

use std::path::Path;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xrvlm_runtime::bundle::manifest::ClassInfo;
use xrvlm_runtime::classifier::{ClassScore, Prediction};
use xrvlm_runtime::crop::NormalizedBox;
use xrvlm_runtime::field::camtrap::{self, ExportOptions};
use xrvlm_runtime::field::config::Profile;
use xrvlm_runtime::field::decision::{DecidedFrame, Decider, EventGrouper, Outcome};
use xrvlm_runtime::field::detection_log::{
    utc, DetectionLog, EventRecord, FrameRecord, ModelRecord, Record, StartRecord, TopClass,
    DETECTION_LOG_FILE,
};
use xrvlm_runtime::taxonomy::{best_taxa, Rank, Taxonomy};

const PROFILE: &str = r#"[deployment]
id = "test-cam-01"
location_name = "Test creek"
latitude = -28.23
longitude = 153.12
coordinate_uncertainty_m = 10
utc_offset = "+10:00"
camera_model = "Test camera"
camera_height_m = 0.5

[source]
kind = "synthetic"
seed = 7
species = 12

[model]
bundle = "bundle"

[decision]
threshold = 0.5
event_gap_s = 30

[output]
folder = "out"
"#;

/// (seconds after the first frame, best label, its probability); the rest goes to `blank`.
const FRAMES: [(u64, &str, f32); 8] = [
    (0, "blank", 0.9),
    (10, "bartail_finch", 0.8),
    (15, "bartail_finch", 0.7),
    (20, "greybill_chat", 0.6),
    (200, "blank", 0.95),
    (300, "greybill_chat", 0.3),
    (305, "greybill_chat", 0.4),
    (900, "blank", 0.85),
];

fn classes() -> Vec<ClassInfo> {
    let mut finch = ClassInfo::from_label("bartail_finch");
    finch.scientific_name = Some("Fringilla caudata".into());
    vec![
        finch,
        ClassInfo::from_label("blank"),
        ClassInfo::from_label("greybill_chat"),
    ]
}

/// The start record of a run of `profile` at `t0` with a bundle of `classes`.
fn start_record(profile: &Profile, t0: SystemTime, classes: Vec<ClassInfo>) -> Record {
    Record::Start(StartRecord {
        started_at: utc(t0),
        runtime_version: "0.1.0".into(),
        profile: "profile.toml".into(),
        deployment: profile.deployment.clone(),
        model: ModelRecord {
            name: "test".into(),
            version: "1".into(),
            bundle: "bundle".into(),
            precision: "int8".into(),
            classes,
            blank_label: "blank".into(),
        },
    })
}

/// Writes the log a field run over `FRAMES` writes, through the real decision, events and log.
fn write_log(dir: &Path) -> std::path::PathBuf {
    let profile = Profile::parse(PROFILE, &dir.join("profile.toml")).unwrap();
    let offset = profile.deployment.utc_offset;
    let path = dir.join(DETECTION_LOG_FILE);
    let (mut log, _) = DetectionLog::open(&path).unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    log.append(start_record(&profile, t0, classes())).unwrap();
    let decider = Decider::new(profile.decision.clone());
    let mut events = EventGrouper::new(Duration::from_secs(profile.decision.event_gap_s.into()), 1);
    for (i, (seconds, label, probability)) in FRAMES.into_iter().enumerate() {
        let captured = t0 + Duration::from_secs(seconds);
        let top = vec![ClassScore {
            index: 0,
            label: label.into(),
            probability,
        }];
        let outcome = decider.decide(&Prediction {
            top: top.clone(),
            logits: Vec::new(),
            open_world: None,
            taxa: Vec::new(),
        });
        let media_id = format!("m{i}");
        let decided = DecidedFrame {
            media_id: media_id.clone(),
            captured,
            outcome: outcome.clone(),
        };
        if let Some(event) = events.push(&decided) {
            log.append(Record::Event(EventRecord::new(&event, offset)))
                .unwrap();
        }
        log.append(Record::Frame(FrameRecord {
            processed_at: utc(captured + Duration::from_secs(1)),
            captured: offset.rfc3339(captured),
            media_id,
            source: "synthetic".into(),
            file_name: format!("frame-{i}.jpg"),
            outcome: outcome.clone(),
            top: top.iter().map(TopClass::from).collect(),
            latency_ms: 40.0,
            saved_frame: outcome
                .is_animal()
                .then(|| format!("frames/2026-09-22/{i:010}_m{i}.jpg")),
            // Animal frames classified on the motion gate's region, as the field loop does.
            bbox: outcome
                .is_animal()
                .then(|| NormalizedBox::new(0.1 * (i % 5) as f64, 0.3, 0.25, 0.4).unwrap()),
        }))
        .unwrap();
    }
    if let Some(event) = events.flush() {
        log.append(Record::Event(EventRecord::new(&event, offset)))
            .unwrap();
    }
    path
}

fn options() -> ExportOptions {
    ExportOptions {
        created: utc(SystemTime::now()),
        contributor: "Test contributor".into(),
        project_title: "Test project".into(),
        deployment: None,
        classes: None,
    }
}

/// Exports the log of `FRAMES` into `dir/package`.
fn export(dir: &Path) -> std::path::PathBuf {
    let log = write_log(dir);
    let (entries, problems) = xrvlm_runtime::field::detection_log::read_records(&log).unwrap();
    assert!(problems.is_empty());
    let out = dir.join("package");
    let summary = camtrap::export(&entries, &options(), &out).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    out
}

fn rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn exported_package_is_valid_camtrap_dp() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    let problems = camtrap_schema::validate_package(&out);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn events_become_event_observations_and_boxed_or_blank_frames_media_observations() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    assert_eq!(rows(&out.join("deployments.csv")).len(), 1);
    assert_eq!(rows(&out.join("media.csv")).len(), FRAMES.len());
    let observations = rows(&out.join("observations.csv"));
    // Columns: 0 observationID, 2 mediaID, 3 eventID, 4 eventStart, 5 eventEnd,
    // 6 observationLevel, 7 observationType, 9 scientificName.
    let summary: Vec<(&str, &str, &str, &str)> = observations
        .iter()
        .map(|r| (&r[6], &r[7], &r[9], &r[2]))
        .collect();
    assert_eq!(
        summary,
        [
            ("media", "blank", "", "m0"),
            // Frames classified on a region: the animal with its box, per frame.
            ("media", "animal", "Fringilla caudata", "m1"),
            ("media", "animal", "Fringilla caudata", "m2"),
            ("media", "animal", "greybill chat", "m3"),
            ("event", "animal", "Fringilla caudata", ""),
            ("media", "blank", "", "m4"),
            ("event", "unknown", "", ""),
            ("media", "blank", "", "m7"),
        ]
    );
    // Columns 18–21: bboxX, bboxY, bboxWidth, bboxHeight (the log's box of frame 2).
    let boxed = &observations[2];
    assert_eq!(
        (&boxed[18], &boxed[19], &boxed[20], &boxed[21]),
        ("0.2000", "0.3000", "0.2500", "0.4000")
    );
    assert_eq!(&observations[4][18], "", "an event has no box");
    let finch = &observations[4];
    assert_eq!(
        (&finch[3], &finch[4], &finch[5]),
        (
            "event-1",
            "2026-09-22T00:13:30+10:00",
            "2026-09-22T00:13:40+10:00"
        )
    );
    let descriptor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("datapackage.json")).unwrap())
            .unwrap();
    let taxa: Vec<&str> = descriptor["taxonomic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scientificName"].as_str().unwrap())
        .collect();
    assert_eq!(taxa, ["Fringilla caudata", "greybill chat"]);
    assert_eq!(descriptor["temporal"]["start"], "2026-09-22");
}

#[test]
fn a_rolled_up_frame_and_event_name_the_taxon_with_its_rank() {
    let taxonomy = |genus: &str| Taxonomy {
        genus: Some(genus.into()),
        family: Some("Conirostridae".into()),
        order: Some("Passeriformes".into()),
        class: Some("Aves".into()),
    };
    let mut classes = classes();
    classes[0].taxonomy = Some(taxonomy("Conizona"));
    classes[2].taxonomy = Some(taxonomy("Conileia"));
    let twobar = ClassInfo {
        taxonomy: Some(taxonomy("Conizona")),
        ..ClassInfo::from_label("twobar_finch")
    };
    classes.push(twobar);
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::parse(PROFILE, &dir.path().join("profile.toml")).unwrap();
    let offset = profile.deployment.utc_offset;
    let path = dir.path().join(DETECTION_LOG_FILE);
    let (mut log, _) = DetectionLog::open(&path).unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    log.append(start_record(&profile, t0, classes.clone()))
        .unwrap();
    // Two finches of one genus share the frame's probability: no species is sure, Conizona is.
    let probabilities = [0.35f32, 0.05, 0.2, 0.4];
    let taxonomies: Vec<_> = classes.iter().map(|c| c.taxonomy.as_ref()).collect();
    let top: Vec<ClassScore> = [3, 0]
        .into_iter()
        .map(|i| ClassScore {
            index: i,
            label: classes[i].label.clone(),
            probability: probabilities[i],
        })
        .collect();
    let outcome = Decider::new(profile.decision.clone()).decide(&Prediction {
        top: top.clone(),
        logits: Vec::new(),
        open_world: None,
        taxa: best_taxa(&probabilities, &taxonomies),
    });
    assert!(
        matches!(&outcome, Outcome::Taxon { rank: Rank::Genus, name, .. } if name == "Conizona")
    );
    let mut events = EventGrouper::new(Duration::from_secs(30), 1);
    events.push(&DecidedFrame {
        media_id: "m0".into(),
        captured: t0,
        outcome: outcome.clone(),
    });
    log.append(Record::Frame(FrameRecord {
        processed_at: utc(t0),
        captured: offset.rfc3339(t0),
        media_id: "m0".into(),
        source: "synthetic".into(),
        file_name: "frame-0.jpg".into(),
        outcome,
        top: top.iter().map(TopClass::from).collect(),
        latency_ms: 40.0,
        saved_frame: None,
        bbox: Some(NormalizedBox::new(0.1, 0.2, 0.3, 0.4).unwrap()),
    }))
    .unwrap();
    let event = events.flush().unwrap();
    log.append(Record::Event(EventRecord::new(&event, offset)))
        .unwrap();
    drop(log);
    let (entries, problems) = xrvlm_runtime::field::detection_log::read_records(&path).unwrap();
    assert!(problems.is_empty());
    let out = dir.path().join("package");
    camtrap::export(&entries, &options(), &out).unwrap();
    let problems = camtrap_schema::validate_package(&out);
    assert!(problems.is_empty(), "{problems:#?}");
    let observations = rows(&out.join("observations.csv"));
    let summary: Vec<(&str, &str, &str)> =
        observations.iter().map(|r| (&r[6], &r[7], &r[9])).collect();
    assert_eq!(
        summary,
        [
            ("media", "animal", "Conizona"),
            ("event", "animal", "Conizona")
        ]
    );
    let descriptor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("datapackage.json")).unwrap())
            .unwrap();
    let taxa = descriptor["taxonomic"].as_array().unwrap();
    let genus = taxa
        .iter()
        .find(|t| t["scientificName"] == "Conizona")
        .expect("the genus is listed");
    assert_eq!(genus["taxonRank"], "genus");
    assert_eq!(genus["family"], "Conirostridae");
    assert!(genus.get("genus").is_none(), "a genus has no genus field");
    let finch = taxa
        .iter()
        .find(|t| t["scientificName"] == "Fringilla caudata")
        .unwrap();
    assert_eq!(
        (&finch["taxonRank"], &finch["genus"]),
        (&"species".into(), &"Conizona".into())
    );
    // Species, then two genera, one family, one order, one class.
    assert_eq!(taxa.len(), 3 + 2 + 1 + 1 + 1);
}

#[test]
fn validator_accepts_the_standards_own_example_package() {
    let problems = camtrap_schema::validate_package(&camtrap_schema::fixtures().join("example"));
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Rewrites one cell of `file` in the package.
fn break_cell(out: &Path, file: &str, row: usize, column: &str, value: &str) {
    let path = out.join(file);
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let i = header.iter().position(|h| h == column).unwrap();
    let mut cells: Vec<String> = records[row].iter().map(str::to_string).collect();
    cells[i] = value.into();
    records[row] = csv::StringRecord::from(cells);
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for r in &records {
        writer.write_record(r).unwrap();
    }
    writer.flush().unwrap();
}

fn assert_rejected(out: &Path, expected: &str) {
    let problems = camtrap_schema::validate_package(out);
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got {problems:#?}"
    );
}

#[test]
fn validator_rejects_a_value_outside_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    break_cell(&out, "observations.csv", 1, "observationType", "bird");
    assert_rejected(
        &out,
        "observations.csv: row 3, column observationType: \"bird\": not one of",
    );
}

#[test]
fn validator_rejects_missing_required_out_of_range_and_bad_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    break_cell(&out, "deployments.csv", 0, "latitude", "91");
    break_cell(&out, "media.csv", 0, "filePublic", "");
    break_cell(&out, "media.csv", 1, "timestamp", "2026-09-22 07:20:10");
    break_cell(&out, "media.csv", 2, "filePath", "../frames/x.jpg");
    assert_rejected(&out, "column latitude: \"91\": above the maximum");
    assert_rejected(
        &out,
        "media.csv: row 2, column filePublic: required value is missing",
    );
    assert_rejected(
        &out,
        "column timestamp: \"2026-09-22 07:20:10\": not a datetime",
    );
    assert_rejected(&out, "column filePath: \"../frames/x.jpg\": does not match");
}

#[test]
fn validator_rejects_broken_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    break_cell(&out, "media.csv", 3, "deploymentID", "nowhere");
    break_cell(&out, "media.csv", 4, "mediaID", "m0");
    assert_rejected(
        &out,
        "media.csv: column deploymentID: \"nowhere\" is not a deployments.deploymentID",
    );
    assert_rejected(
        &out,
        "media.csv: row 6, column mediaID: \"m0\" is not unique",
    );
}

#[test]
fn validator_rejects_a_descriptor_missing_required_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path());
    let path = out.join("datapackage.json");
    let mut descriptor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    descriptor.as_object_mut().unwrap().remove("temporal");
    descriptor["project"]["samplingDesign"] = "whenever".into();
    descriptor["resources"][0]["schema"] =
        "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.1/deployments-table-schema.json"
            .into();
    std::fs::write(&path, descriptor.to_string()).unwrap();
    assert_rejected(&out, "datapackage.json: required key temporal is missing");
    assert_rejected(
        &out,
        "datapackage.json.project.samplingDesign: \"whenever\" is not one of",
    );
    assert_rejected(
        &out,
        "datapackage.json.resources[0]: matches 0 of the oneOf schemas",
    );
}

#[test]
fn cli_exports_a_valid_package_with_the_profile_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = dir.path().join("cli-package");
    let status = common::xrvlm()
        .arg("export-camtrap")
        .arg(&log)
        .arg("--out")
        .arg(&out)
        .arg("--profile")
        .arg(repo.join("firmware-config/desktop-demo.toml"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let problems = camtrap_schema::validate_package(&out);
    assert!(problems.is_empty(), "{problems:#?}");
    let deployments = rows(&out.join("deployments.csv"));
    assert_eq!(&deployments[0][0], "desktop-demo");
}
