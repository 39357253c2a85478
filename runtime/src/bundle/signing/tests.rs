use super::*;

fn key() -> SecretKey {
    SecretKey::parse(&format!("{SECRET_PREFIX}{}", "17".repeat(32))).unwrap()
}

#[test]
fn a_public_key_reads_back_from_its_text_with_a_comment() {
    let public = key().public();
    let text = format!("{public} field-team-2026\n");
    assert_eq!(PublicKey::parse(&text).unwrap(), public);
    assert!(public.fingerprint().to_string().starts_with("SHA256:"));
    assert_eq!(public.fingerprint().to_string().len(), "SHA256:".len() + 16);
}

#[test]
fn a_secret_key_is_never_taken_for_a_public_one() {
    let secret = format!("{SECRET_PREFIX}{}", "17".repeat(32));
    let err = PublicKey::parse(&secret).unwrap_err();
    assert!(err.contains("secret key"), "{err}");
}

#[test]
fn key_text_of_the_wrong_length_or_with_non_hex_digits_is_refused() {
    let public = key().public().to_string();
    assert!(PublicKey::parse(&public[..public.len() - 2]).is_err());
    let plus = format!("{PUBLIC_PREFIX}+f{}", "00".repeat(31));
    assert!(PublicKey::parse(&plus).is_err());
    assert!(SecretKey::parse("ed25519-secret:zz").is_err());
    assert!(unhex::<2>("+f00").is_none());
    assert_eq!(unhex::<2>("0aFF"), Some([0x0a, 0xff]));
}

#[test]
fn a_generated_key_signs_what_its_public_key_verifies() {
    let a = SecretKey::generate().unwrap();
    let b = SecretKey::generate().unwrap();
    assert_ne!(a.public(), b.public());
    let signature = a.0.sign(b"manifest");
    let dir = Path::new("bundle");
    assert!(verify(dir, b"manifest", a.public(), &signature).is_ok());
    assert!(matches!(
        verify(dir, b"manifesT", a.public(), &signature),
        Err(SigningError::ManifestChanged { .. })
    ));
    assert!(verify(dir, b"manifest", b.public(), &signature).is_err());
}
