//! The PKCS#11 provider against a real SoftHSM2 token (Debian's `softhsm2`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use ferrokms_core::material::{RootKeyProvider, WRAP_FORMAT_PKCS11};
use ferrokms_hsm::{HsmError, HsmRootKey, Pin, Token, TokenSpec};
use zeroize::Zeroizing;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";

const TOKENS: &[&str] = &["root-wraps", "refusals", "store-keys"];

/// SoftHSM2 reads its configuration and finds its tokens once per process, so every test
/// of this binary shares one token folder with a token of each test's, made before any test
/// loads the module.
fn token_dir() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in TOKENS {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--pin",
                    PIN,
                    "--so-pin",
                    "5678",
                ])
                .output()
                .expect("softhsm2-util runs (apt-get install softhsm2)");
            assert!(out.status.success(), "{out:?}");
        }
        (dir, conf)
    })
    .1
}

fn new_token(label: &str) -> TokenSpec {
    assert!(TOKENS.contains(&label));
    token_dir();
    spec(label, PIN)
}

fn spec(label: &str, pin: &str) -> TokenSpec {
    TokenSpec {
        module: MODULE.into(),
        token_label: label.into(),
        slot: None,
        pin: Pin::new(Zeroizing::new(pin.into())),
    }
}

/// The slot SoftHSM2 gave a token, as its own tool lists it.
fn slot_of(label: &str) -> u64 {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", token_dir())
        .arg("--show-slots")
        .output()
        .expect("softhsm2-util runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut slot = None;
    for line in text.lines() {
        if let Some(id) = line
            .trim()
            .strip_prefix("Slot ")
            .and_then(|id| id.trim().parse().ok())
        {
            slot = Some(id);
        }
        if line.trim().strip_prefix("Label:").map(str::trim) == Some(label) {
            return slot.expect("a slot line before the label");
        }
    }
    panic!("no slot holds token {label}: {text}")
}

#[test]
fn the_root_key_wraps_inside_the_token_bound_to_its_binding() {
    let spec = new_token("root-wraps");
    let token = Arc::new(Token::open(&spec).unwrap());
    let (root, created) = HsmRootKey::open_or_create(token.clone(), "ferrokms-root").unwrap();
    assert!(created);
    let wrapped = root
        .wrap(b"binding", b"thirty-two bytes of key material")
        .unwrap();
    assert_eq!(wrapped[0], WRAP_FORMAT_PKCS11);
    assert_eq!(wrapped.len(), 1 + 12 + 32 + 16);
    assert!(!wrapped.windows(9).any(|w| w == b"key mater"));
    assert_eq!(
        &root.unwrap(b"binding", &wrapped).unwrap()[..],
        b"thirty-two bytes of key material"
    );
    assert!(root.unwrap(b"another binding", &wrapped).is_err());
    let mut forged = wrapped.clone();
    forged[20] ^= 1;
    assert!(root.unwrap(b"binding", &forged).is_err());
    // Two wraps of one secret never share an IV.
    let again = root
        .wrap(b"binding", b"thirty-two bytes of key material")
        .unwrap();
    assert_ne!(again[1..13], wrapped[1..13]);

    // Found again by label, from another opening of the token: the same key.
    let (reopened, created) =
        HsmRootKey::open_or_create(Arc::new(Token::open(&spec).unwrap()), "ferrokms-root").unwrap();
    assert!(!created);
    assert_eq!(
        &reopened.unwrap(b"binding", &wrapped).unwrap()[..],
        b"thirty-two bytes of key material"
    );
    // A secret opened once opens again without going to the token (strict-mode requests
    // open their caller's secret every time); a wrong binding still fails.
    let before = token.operations();
    let again = root.wrap(b"hot", b"an access key's secret").unwrap();
    assert_eq!(token.operations(), before + 1);
    for _ in 0..3 {
        assert_eq!(
            &root.unwrap(b"hot", &again).unwrap()[..],
            b"an access key's secret"
        );
    }
    assert_eq!(token.operations(), before + 2, "opened in the token once");
    assert!(root.unwrap(b"cold", &again).is_err());
    assert_eq!(token.operations(), before + 3);
    // Another label is another key.
    let (other, _) = HsmRootKey::open_or_create(token, "another-root").unwrap();
    assert!(other.unwrap(b"binding", &wrapped).is_err());
}

#[test]
fn a_wrong_pin_a_missing_token_or_a_missing_key_is_told_apart() {
    let spec = new_token("refusals");
    assert!(matches!(
        Token::open(&self::spec("refusals", "9999")),
        Err(HsmError::PinIncorrect)
    ));
    assert!(matches!(
        Token::open(&self::spec("no-such-token", PIN)),
        Err(HsmError::TokenNotFound(_))
    ));
    let token = Arc::new(Token::open(&spec).unwrap());
    assert!(matches!(
        HsmRootKey::open(token, "never-made"),
        Err(HsmError::KeyNotFound(_))
    ));
    // A slot pins the token down: its own opens, any other is refused.
    let slot = slot_of("refusals");
    let pinned = TokenSpec {
        slot: Some(slot),
        ..spec.clone()
    };
    assert!(Token::open(&pinned).is_ok());
    let elsewhere = TokenSpec {
        slot: Some(slot + 1),
        ..spec
    };
    assert!(matches!(
        Token::open(&elsewhere),
        Err(HsmError::TokenNotFound(_))
    ));
}

#[test]
fn keys_made_in_the_token_seal_and_open_there_and_can_be_destroyed() {
    let spec = new_token("store-keys");
    let token = Token::open(&spec).unwrap();
    let key = token.generate_key("cks-key-1").unwrap();
    assert_eq!(token.find_key("cks-key-1").unwrap(), key);
    let iv = [7u8; 12];
    let sealed = token.seal(key, &iv, b"aad", b"data key").unwrap();
    assert_eq!(
        &token.open_sealed(key, &iv, b"aad", &sealed).unwrap()[..],
        b"data key"
    );
    let refused = token.open_sealed(key, &iv, b"other aad", &sealed);
    assert!(matches!(refused, Err(HsmError::Unauthentic)), "{refused:?}");
    token.destroy_key(key).unwrap();
    assert!(matches!(
        token.find_key("cks-key-1"),
        Err(HsmError::KeyNotFound(_))
    ));
}
