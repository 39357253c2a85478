//! Signed bundles: Ed25519 keys, the detached signature `manifest.sig`, and the trust policy a
//! bundle is opened under (`models/BUNDLE.md`, "Signatures").
//!
//! A signature covers the exact bytes of `manifest.toml`. The manifest records every listed
//! file's size and SHA-256, and [`super::Bundle::open_trusted`] checks them all, so signing the
//! manifest signs every file. `manifest.sig` is not listed in `[[files]]` (it cannot hold its
//! own digest); it is a small TOML file with the signer's public key and the signature:
//!
//! ```toml
//! key = "ed25519:<64 hex digits>"
//! signature = "<128 hex digits>"
//! ```
//!
//! Keys are written as one line of text: `ed25519:<hex>` for a public key (a `.pub` file, or an
//! entry of a profile's `trusted_keys`), `ed25519-secret:<hex>` for a secret key (a `.key` file,
//! mode 0600). A key is shown by its [`Fingerprint`], the first 8 bytes of the SHA-256 of the
//! public key.
//!
//! Every refusal is its own [`SigningError`] variant, naming the bundle and what is wrong: no
//! signature, a signer that is not trusted (with both fingerprints), a signature that does not
//! match the manifest (it changed after signing), a `manifest.sig` that cannot be read.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::integrity::Sha256Digest;
use super::manifest::MANIFEST_FILE;

/// The detached signature's file name, next to `manifest.toml`.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// How a public key's text starts.
const PUBLIC_PREFIX: &str = "ed25519:";
/// How a secret key's text starts: distinct from a public key's, so one is never taken for the
/// other (a secret key pasted into `trusted_keys` is refused, not trusted).
const SECRET_PREFIX: &str = "ed25519-secret:";
/// Bytes of a key's SHA-256 shown as its fingerprint: 64 bits tell a handful of field keys
/// apart at a glance; the full key is what is compared.
const FINGERPRINT_BYTES: usize = 8;

/// An Ed25519 public key: who signed a bundle, or a key a profile trusts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// A short, printable name of a public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; FINGERPRINT_BYTES]);

/// An Ed25519 secret key (the `.key` file of `xrvlm keygen`).
pub struct SecretKey(SigningKey);

/// Which signatures a bundle must carry to be opened ([`super::Bundle::open_trusted`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Keys whose signature is accepted.
    trusted: Vec<PublicKey>,
    /// Whether an unsigned bundle is refused. Without it, a signature is not checked at all:
    /// tools that edit a manifest on purpose (`xrvlm-train set-taxonomy`) leave a stale one.
    required: bool,
}

/// What `manifest.sig` says about the manifest, for `xrvlm info`.
#[derive(Debug)]
pub enum SignatureStatus {
    /// No `manifest.sig`.
    Unsigned,
    /// A signature of the manifest as it is, by this key.
    Valid(PublicKey),
    /// A `manifest.sig` that does not vouch for the manifest.
    Invalid(SigningError),
}

/// Why a bundle's signature was refused, or a key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A signature is required and the bundle has none.
    #[error(
        "{}: unsigned bundle (no {sig}), but a signature is required",
        dir.display(),
        sig = SIGNATURE_FILE
    )]
    Unsigned {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// The bundle is signed by a key the policy does not trust.
    #[error(
        "{}: signed by key {signer}, which is not trusted (trusted: {})",
        dir.display(),
        list(trusted)
    )]
    UntrustedKey {
        /// The bundle directory.
        dir: PathBuf,
        /// The signer's fingerprint.
        signer: Fingerprint,
        /// The trusted keys' fingerprints.
        trusted: Vec<Fingerprint>,
    },
    /// The signature does not match the manifest: it changed after signing (or the signature
    /// was made by another key than the one it names).
    #[error(
        "{}: {manifest} changed after it was signed by {signer}: the signature does not match it",
        dir.display(),
        manifest = MANIFEST_FILE
    )]
    ManifestChanged {
        /// The bundle directory.
        dir: PathBuf,
        /// The fingerprint `manifest.sig` names.
        signer: Fingerprint,
    },
    /// `manifest.sig` or a key file is not what it should be.
    #[error("{}: {problem}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A signature or key file could not be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `manifest.sig` as TOML.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    key: String,
    signature: String,
}

impl PublicKey {
    /// Parses `ed25519:<64 hex digits>`; anything after the first whitespace (a comment) is
    /// ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let word = text.split_whitespace().next().unwrap_or("");
        if word.starts_with(SECRET_PREFIX) {
            return Err("this is a secret key; give the public key (.pub)".into());
        }
        let hex = word
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| format!("expected {PUBLIC_PREFIX}<64 hex digits>, got {word:?}"))?;
        let bytes = unhex::<32>(hex)
            .ok_or_else(|| format!("expected {PUBLIC_PREFIX} then 64 hex digits, got {word:?}"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|e| format!("not an Ed25519 public key: {e}"))
    }

    /// Reads a `.pub` file.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let text = read_text(path)?;
        Self::parse(&text).map_err(|problem| SigningError::Malformed {
            file: path.to_path_buf(),
            problem,
        })
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256Digest::of_bytes(self.0.as_bytes());
        let mut short = [0u8; FINGERPRINT_BYTES];
        short.copy_from_slice(&digest.as_bytes()[..FINGERPRINT_BYTES]);
        Fingerprint(short)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Parses `ed25519-secret:<64 hex digits>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let word = text.trim();
        let bytes = word
            .strip_prefix(SECRET_PREFIX)
            .and_then(unhex::<32>)
            .ok_or_else(|| format!("expected {SECRET_PREFIX}<64 hex digits>"))?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }

    /// Reads a `.key` file.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let text = read_text(path)?;
        Self::parse(&text).map_err(|problem| SigningError::Malformed {
            file: path.to_path_buf(),
            problem,
        })
    }

    /// Writes the key pair as `PREFIX.key` (mode 0600, never over an existing file) and
    /// `PREFIX.pub`; returns both paths.
    pub fn write_pair(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), SigningError> {
        let with_ext = |ext: &str| {
            let mut name = prefix.as_os_str().to_owned();
            name.push(ext);
            PathBuf::from(name)
        };
        let (secret, public) = (with_ext(".key"), with_ext(".pub"));
        let io = |file: &Path| {
            let file = file.to_path_buf();
            move |source| SigningError::Io { file, source }
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret)
            .map_err(io(&secret))?;
        writeln!(f, "{SECRET_PREFIX}{}", hex(self.0.as_bytes()))
            .and_then(|()| f.sync_all())
            .map_err(io(&secret))?;
        fs::write(&public, format!("{}\n", self.public())).map_err(io(&public))?;
        Ok((secret, public))
    }
}

impl TrustPolicy {
    /// Any bundle, signed or not, signature unchecked (what [`super::Bundle::open`] uses).
    pub fn permissive() -> Self {
        Self::default()
    }

    /// A signature by one of `trusted` is required.
    pub fn require(trusted: Vec<PublicKey>) -> Self {
        Self {
            trusted,
            required: true,
        }
    }

    /// Whether a signature is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The trusted keys.
    pub fn trusted(&self) -> &[PublicKey] {
        &self.trusted
    }

    /// Checks `manifest` (the bytes of the bundle's `manifest.toml`, as they will be parsed)
    /// against the policy: the signer when a signature is required and good, `None` when
    /// none is required.
    pub(crate) fn check(
        &self,
        dir: &Path,
        manifest: &[u8],
    ) -> Result<Option<PublicKey>, SigningError> {
        if !self.required {
            return Ok(None);
        }
        let Some((signer, signature)) = read_signature(dir)? else {
            return Err(SigningError::Unsigned {
                dir: dir.to_path_buf(),
            });
        };
        if !self.trusted.contains(&signer) {
            return Err(SigningError::UntrustedKey {
                dir: dir.to_path_buf(),
                signer: signer.fingerprint(),
                trusted: self.trusted.iter().map(PublicKey::fingerprint).collect(),
            });
        }
        verify(dir, manifest, signer, &signature)?;
        Ok(Some(signer))
    }
}

/// What the bundle's `manifest.sig` says about its `manifest.toml`, whoever signed it.
pub fn status(dir: &Path) -> SignatureStatus {
    let manifest_path = dir.join(MANIFEST_FILE);
    let found = read_signature(dir).and_then(|found| {
        let Some((signer, signature)) = found else {
            return Ok(None);
        };
        let manifest = fs::read(&manifest_path).map_err(|source| SigningError::Io {
            file: manifest_path.clone(),
            source,
        })?;
        verify(dir, &manifest, signer, &signature).map(|()| Some(signer))
    });
    match found {
        Ok(None) => SignatureStatus::Unsigned,
        Ok(Some(signer)) => SignatureStatus::Valid(signer),
        Err(e) => SignatureStatus::Invalid(e),
    }
}

/// Signs the bundle's `manifest.toml` as it is on disk, writing `manifest.sig` atomically
/// (a temporary file renamed over it). Open the bundle first: signing vouches for it.
pub fn sign(dir: &Path, key: &SecretKey) -> Result<PublicKey, SigningError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = fs::read(&manifest_path).map_err(|source| SigningError::Io {
        file: manifest_path,
        source,
    })?;
    let signature: Signature = key.0.sign(&manifest);
    let text = toml::to_string(&SignatureFile {
        key: key.public().to_string(),
        signature: hex(&signature.to_bytes()),
    })
    .expect("two strings serialise");
    let path = dir.join(SIGNATURE_FILE);
    let tmp = dir.join(format!("{SIGNATURE_FILE}.tmp"));
    let io = |file: &Path| {
        let file = file.to_path_buf();
        move |source| SigningError::Io { file, source }
    };
    fs::write(&tmp, text).map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(key.public())
}

/// The signer and signature `manifest.sig` holds, or `None` when there is no such file.
fn read_signature(dir: &Path) -> Result<Option<(PublicKey, Signature)>, SigningError> {
    let file = dir.join(SIGNATURE_FILE);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SigningError::Io { file, source }),
    };
    let malformed = |problem: String| SigningError::Malformed {
        file: file.clone(),
        problem,
    };
    let parsed: SignatureFile =
        toml::from_str(&text).map_err(|e| malformed(format!("not a signature file: {e}")))?;
    let key = PublicKey::parse(&parsed.key).map_err(|p| malformed(format!("key: {p}")))?;
    let bytes = unhex::<64>(&parsed.signature)
        .ok_or_else(|| malformed("signature: expected 128 hex digits".into()))?;
    Ok(Some((key, Signature::from_bytes(&bytes))))
}

/// The signature is `signer`'s over exactly `manifest`.
fn verify(
    dir: &Path,
    manifest: &[u8],
    signer: PublicKey,
    signature: &Signature,
) -> Result<(), SigningError> {
    signer
        .0
        .verify_strict(manifest, signature)
        .map_err(|_| SigningError::ManifestChanged {
            dir: dir.to_path_buf(),
            signer: signer.fingerprint(),
        })
}

fn read_text(path: &Path) -> Result<String, SigningError> {
    fs::read_to_string(path).map_err(|source| SigningError::Io {
        file: path.to_path_buf(),
        source,
    })
}

fn list(fingerprints: &[Fingerprint]) -> String {
    if fingerprints.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = fingerprints.iter().map(Fingerprint::to_string).collect();
    names.join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `2 * N` hex digits (either case) as bytes.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
