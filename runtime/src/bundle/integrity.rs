//! File integrity: SHA-256 digests as the bundle manifest records them.
//!
//! A digest is written in the manifest as 64 lowercase hexadecimal characters; [`Sha256Digest`]
//! parses and prints exactly that form, so a digest that exists is well formed. Files are hashed
//! in a streaming pass ([`digest_file`]), so verifying a large image model costs no memory.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Read buffer of [`digest_file`]: large enough to keep the hash busy, small enough to never
/// matter for peak memory.
const READ_CHUNK: usize = 1 << 16;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 lowercase hexadecimal characters, got {0:?}")]
pub struct DigestParseError(String);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The digest and the length of everything `reader` yields.
pub fn digest_reader(mut reader: impl Read) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Sha256Digest(hasher.finalize().into()), total))
}

/// The digest and byte count of the file at `path`, read in one streaming pass.
pub fn digest_file(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    digest_reader(File::open(path)?)
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DigestParseError(s.to_string());
        let hex = s.as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (lower_hex_value(pair[0]).ok_or_else(bad)? << 4)
                | lower_hex_value(pair[1]).ok_or_else(bad)?;
        }
        Ok(Self(out))
    }
}

/// Value of one lowercase hexadecimal digit.
fn lower_hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_abc_matches_the_fips_180_example() {
        let digest = Sha256Digest::of_bytes(b"abc");
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_forms() {
        let digest = Sha256Digest::of_bytes(b"xrvlm");
        let text = digest.to_string();
        assert_eq!(text.parse::<Sha256Digest>().unwrap(), digest);
        assert!(text.to_uppercase().parse::<Sha256Digest>().is_err());
        assert!(text[..63].parse::<Sha256Digest>().is_err());
        assert!(format!("{}g", &text[..63]).parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn streaming_digest_equals_one_shot_digest() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (digest, len) = digest_reader(&data[..]).unwrap();
        assert_eq!(len, data.len() as u64);
        assert_eq!(digest, Sha256Digest::of_bytes(&data));
    }
}
