//! Signed bundles: a bundle signed by a trusted key opens; under a policy that requires a
//! signature, an unsigned bundle, one signed by another key, one whose manifest changed after
//! signing and one with a byte flipped in any file are refused, each saying which; files that
//! resolve outside the bundle are refused signed or not; `keygen`, `sign`, `info`,
//! `classify --require-signature` and `run` with a profile that requires a signature, through the
//! binary.

use crate::common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::Path;
use std::process::Output;

use common::bundle_writer::{random_image, write_bundle, Spec};
use xrvlm_runtime::bundle::manifest::{ManifestError, MANIFEST_FILE};
use xrvlm_runtime::bundle::signing::{self, SecretKey, SigningError, TrustPolicy, SIGNATURE_FILE};
use xrvlm_runtime::bundle::{Bundle, BundleError};

/// A small bundle in `dir/bundle`, signed by a new key; returns that key.
fn signed_bundle(dir: &Path) -> SecretKey {
    let bundle = dir.join("bundle");
    write_bundle(&bundle, &Spec::small(), 17);
    let key = SecretKey::generate().unwrap();
    signing::sign(&bundle, &key).unwrap();
    key
}

fn trusting(key: &SecretKey) -> TrustPolicy {
    TrustPolicy::require(vec![key.public()])
}

fn refusal(dir: &Path, policy: &TrustPolicy) -> (BundleError, String) {
    let err = Bundle::open_trusted(dir, policy).expect_err("the bundle must be refused");
    let message = err.to_string();
    (err, message)
}

/// Flips the lowest bit of byte `at` of `path`; returns the original bytes.
fn flip(path: &Path, at: usize) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let mut damaged = original.clone();
    damaged[at] ^= 0x01;
    fs::write(path, damaged).unwrap();
    original
}

#[test]
fn a_bundle_signed_by_a_trusted_key_opens_and_names_its_signer() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let other = SecretKey::generate().unwrap();
    let policy = TrustPolicy::require(vec![other.public(), key.public()]);
    let bundle = Bundle::open_trusted(&dir.path().join("bundle"), &policy).unwrap();
    assert_eq!(bundle.signer(), Some(&key.public()));
    assert!(Bundle::open(bundle.dir()).unwrap().signer().is_none());
}

#[test]
fn an_unsigned_bundle_is_refused_only_when_a_signature_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    fs::remove_file(bundle.join(SIGNATURE_FILE)).unwrap();
    Bundle::open(&bundle).expect("no signature is required by default");
    let (err, message) = refusal(&bundle, &trusting(&key));
    assert!(
        matches!(err, BundleError::Signing(SigningError::Unsigned { .. })),
        "{message}"
    );
    assert!(message.contains("unsigned bundle"), "{message}");
    assert!(message.contains(&bundle.display().to_string()), "{message}");
}

#[test]
fn a_bundle_signed_by_another_key_is_refused_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signed_bundle(dir.path());
    let trusted = SecretKey::generate().unwrap();
    let (err, message) = refusal(&dir.path().join("bundle"), &trusting(&trusted));
    assert!(
        matches!(err, BundleError::Signing(SigningError::UntrustedKey { .. })),
        "{message}"
    );
    assert!(message.contains("not trusted"), "{message}");
    for key in [&signer, &trusted] {
        let fingerprint = key.public().fingerprint().to_string();
        assert!(message.contains(&fingerprint), "{message}");
    }
}

#[test]
fn a_manifest_edited_after_signing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    let manifest = bundle.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("name = \"tiny\""));
    fs::write(
        &manifest,
        text.replace("name = \"tiny\"", "name = \"tinY\""),
    )
    .unwrap();
    Bundle::open(&bundle).expect("the edited manifest is still a valid manifest");
    let (err, message) = refusal(&bundle, &trusting(&key));
    assert!(
        matches!(
            err,
            BundleError::Signing(SigningError::ManifestChanged { .. })
        ),
        "{message}"
    );
    assert!(
        message.contains("manifest.toml changed after it was signed"),
        "{message}"
    );
    assert!(
        message.contains(&key.public().fingerprint().to_string()),
        "{message}"
    );
}

/// Every byte of `manifest.toml` and `manifest.sig`, and the first, middle and last byte of
/// every listed file (the image models included), flipped one at a time.
#[test]
fn a_flipped_byte_anywhere_in_a_signed_bundle_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    let policy = trusting(&key);
    let opened = Bundle::open_trusted(&bundle, &policy).unwrap();
    let listed: Vec<String> = opened
        .manifest()
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(listed.len(), 6, "{listed:?}");
    for file in &listed {
        let path = bundle.join(file);
        let len = fs::metadata(&path).unwrap().len() as usize;
        for at in [0, len / 2, len - 1] {
            let original = flip(&path, at);
            let (err, message) = refusal(&bundle, &policy);
            let BundleError::ChangedAfterSigning { source, .. } = &err else {
                panic!("{file} byte {at}: {message}");
            };
            assert!(
                matches!(**source, BundleError::DigestMismatch { .. }),
                "{message}"
            );
            assert!(message.contains(file.as_str()), "{message}");
            assert!(
                message.contains("changed after the bundle was signed"),
                "{message}"
            );
            fs::write(&path, original).unwrap();
        }
    }
    let manifest = bundle.join(MANIFEST_FILE);
    for at in 0..fs::metadata(&manifest).unwrap().len() as usize {
        let original = flip(&manifest, at);
        let (err, message) = refusal(&bundle, &policy);
        assert!(
            matches!(
                err,
                BundleError::Signing(SigningError::ManifestChanged { .. })
            ),
            "manifest byte {at}: {message}"
        );
        fs::write(&manifest, original).unwrap();
    }
    let sig = bundle.join(SIGNATURE_FILE);
    for at in 0..fs::metadata(&sig).unwrap().len() as usize {
        let original = flip(&sig, at);
        let (err, message) = refusal(&bundle, &policy);
        assert!(
            matches!(err, BundleError::Signing(_)),
            "signature byte {at}: {message}"
        );
        fs::write(&sig, original).unwrap();
    }
    Bundle::open_trusted(&bundle, &policy).expect("the restored bundle opens");
}

/// Rewrites the path of the manifest's entry `from` as `to`.
fn relist(bundle: &Path, from: &str, to: &str) {
    let manifest = bundle.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest).unwrap();
    let entry = format!("path = \"{from}\"");
    assert!(text.contains(&entry), "{text}");
    fs::write(&manifest, text.replace(&entry, &format!("path = \"{to}\""))).unwrap();
}

#[test]
fn a_manifest_naming_a_file_outside_the_bundle_is_refused_signed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    let prompts = bundle.join("prompts.safetensors");
    fs::copy(&prompts, dir.path().join("prompts.safetensors")).unwrap();
    let outside = dir.path().join("prompts.safetensors");
    let absolute = outside.to_str().unwrap().to_string();
    let manifest = fs::read(bundle.join(MANIFEST_FILE)).unwrap();
    for path in ["../prompts.safetensors", absolute.as_str()] {
        relist(&bundle, "prompts.safetensors", path);
        for signed in [false, true] {
            let policy = if signed {
                signing::sign(&bundle, &key).unwrap();
                trusting(&key)
            } else {
                TrustPolicy::permissive()
            };
            let (err, message) = refusal(&bundle, &policy);
            assert!(
                matches!(err, BundleError::Manifest(ManifestError::Invalid { .. })),
                "{path}, signed {signed}: {message}"
            );
            assert!(
                message.contains("files[") && message.contains(path),
                "{message}"
            );
        }
        fs::write(bundle.join(MANIFEST_FILE), &manifest).unwrap();
        signing::sign(&bundle, &key).unwrap();
    }
}

#[test]
fn a_listed_symlink_out_of_the_bundle_is_refused_signed_or_not_and_one_inside_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    let image = bundle.join("golden/owl_02.png");
    let outside = dir.path().join("owl_02.png");
    fs::rename(&image, &outside).unwrap();
    symlink(&outside, &image).unwrap();
    for policy in [TrustPolicy::permissive(), trusting(&key)] {
        let (err, message) = refusal(&bundle, &policy);
        assert!(
            matches!(err, BundleError::OutsideBundle { .. }),
            "{message}"
        );
        assert!(
            message.contains("golden/owl_02.png") && message.contains("outside the bundle"),
            "{message}"
        );
    }
    fs::remove_file(&image).unwrap();
    fs::rename(&outside, bundle.join("golden/owl.png")).unwrap();
    symlink("owl.png", &image).unwrap();
    Bundle::open_trusted(&bundle, &trusting(&key)).expect("a symlink inside the bundle is fine");
}

#[test]
fn a_manifest_that_is_a_symlink_out_of_the_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    signed_bundle(dir.path());
    let bundle = dir.path().join("bundle");
    let outside = dir.path().join("manifest.toml");
    fs::rename(bundle.join(MANIFEST_FILE), &outside).unwrap();
    symlink(&outside, bundle.join(MANIFEST_FILE)).unwrap();
    let (err, message) = refusal(&bundle, &TrustPolicy::permissive());
    assert!(
        matches!(err, BundleError::OutsideBundle { .. }),
        "{message}"
    );
}

fn xrvlm(args: &[&str]) -> Output {
    common::xrvlm()
        .args(args)
        .output()
        .expect("the xrvlm binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keygen_writes_a_secret_only_its_owner_reads_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("field");
    let out = xrvlm(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let secret = dir.path().join("field.key");
    let mode = fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = fs::read_to_string(dir.path().join("field.pub")).unwrap();
    let public = signing::PublicKey::parse(&public).unwrap();
    assert_eq!(SecretKey::load(&secret).unwrap().public(), public);
    assert!(text(&out.stdout).contains(&public.fingerprint().to_string()));
    let again = xrvlm(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        SecretKey::load(&secret).unwrap().public(),
        public,
        "the first key is kept"
    );
}

#[test]
fn sign_info_and_classify_require_signature_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let s = |rel: &str| dir.path().join(rel).to_str().unwrap().to_string();
    write_bundle(&dir.path().join("bundle"), &Spec::small(), 23);
    fs::create_dir(dir.path().join("images")).unwrap();
    random_image(24, 20, 5)
        .save(dir.path().join("images/a.png"))
        .unwrap();
    for prefix in ["ours", "theirs"] {
        let out = xrvlm(&["keygen", "--out", &s(prefix)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let classify = |key: &str| {
        xrvlm(&[
            "classify",
            &s("images"),
            "--bundle",
            &s("bundle"),
            "--threads",
            "1",
            "--require-signature",
            "--trusted-key",
            key,
        ])
    };

    let check = xrvlm(&[
        "check",
        "--bundle",
        &s("bundle"),
        "--report",
        &s("report.json"),
        "--require-signature",
        "--trusted-key",
        &s("ours.pub"),
    ]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stderr).contains("unsigned bundle"),
        "{}",
        text(&check.stderr)
    );
    let out = classify(&s("ours.pub"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unsigned bundle"),
        "{}",
        text(&out.stderr)
    );
    let info = xrvlm(&["info", &s("bundle")]);
    assert!(
        text(&info.stdout).contains("signature   unsigned"),
        "{}",
        text(&info.stdout)
    );

    let out = xrvlm(&["sign", &s("bundle"), "--key", &s("ours.key")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ours = signing::PublicKey::load(Path::new(&s("ours.pub"))).unwrap();
    let fingerprint = ours.fingerprint().to_string();
    let info = xrvlm(&["info", &s("bundle")]);
    assert!(
        text(&info.stdout).contains(&format!("signed by {fingerprint} (valid)")),
        "{}",
        text(&info.stdout)
    );
    let out = classify(&s("ours.pub"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = classify(&ours.to_string());
    assert_eq!(
        out.status.code(),
        Some(0),
        "key text works too: {}",
        text(&out.stderr)
    );
    let out = classify(&s("theirs.pub"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not trusted"),
        "{}",
        text(&out.stderr)
    );

    let manifest = dir.path().join("bundle").join(MANIFEST_FILE);
    let edited = fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"tiny\"", "\"tinY\"");
    fs::write(&manifest, edited).unwrap();
    let out = classify(&s("ours.pub"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("changed after it was signed"),
        "{}",
        text(&out.stderr)
    );
    let info = xrvlm(&["info", &s("bundle")]);
    assert!(
        text(&info.stdout).contains("signature   INVALID"),
        "{}",
        text(&info.stdout)
    );
}

/// A profile running `bundle` over a folder of one image, requiring a signature by `trusted`.
fn signed_profile(dir: &Path, trusted: &SecretKey) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("frames")).unwrap();
    random_image(24, 20, 9)
        .save(dir.join("frames/a.png"))
        .unwrap();
    let text = format!(
        r#"[deployment]
id = "signed"
location_name = "Bench"
latitude = 0.0
longitude = 0.0
utc_offset = "+00:00"

[source]
kind = "folder"
path = "frames"

[model]
bundle = "bundle"
precision = "fp32"
threads = 1
require_signature = true
trusted_keys = ["{}"]

[motion]
enabled = false

[decision]
blank_label = "owl"

[output]
folder = "out"
"#,
        trusted.public()
    );
    let path = dir.join("profile.toml");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_starts_only_with_a_bundle_signed_by_a_key_its_profile_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let key = signed_bundle(dir.path());
    let profile = signed_profile(dir.path(), &key);
    let profile = profile.to_str().unwrap();
    let run = || xrvlm(&["run", "--config", profile, "--max-frames", "1"]);

    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let other = SecretKey::generate().unwrap();
    signing::sign(&dir.path().join("bundle"), &other).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not trusted"),
        "{}",
        text(&out.stderr)
    );

    fs::remove_file(dir.path().join("bundle").join(SIGNATURE_FILE)).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unsigned bundle"),
        "{}",
        text(&out.stderr)
    );
}
