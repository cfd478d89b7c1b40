//! The cryptographic module a build runs on: what `--version` and the banner say, and what a
//! FIPS build (`--features fips`) refuses. CI runs this file, with a subset of the suite, on
//! the FIPS build as well (scripts/test-all.sh).

use aws_sdk_kms::types::{KeySpec, KeyUsageType};

use crate::harness::{code, message, Server};

const FIPS: bool = cfg!(feature = "fips");

#[test]
fn the_version_names_the_module_and_its_mode() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .arg("--version")
        .output()
        .expect("ferrokms runs");
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with(&format!("ferrokms {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    if FIPS {
        assert!(version.contains("(AWS-LC FIPS "), "{version}");
        assert!(version.contains("FIPS 140-3 mode"), "{version}");
    } else {
        assert!(
            version.contains("(AWS-LC ") && !version.contains("AWS-LC FIPS"),
            "{version}"
        );
        assert!(version.contains("not in FIPS mode"), "{version}");
    }
}

#[tokio::test]
async fn a_fips_build_refuses_keys_its_module_does_not_approve() {
    let server = Server::start();
    let line = &server.cryptography;
    assert!(line.contains("self-tests passed"), "{line}");
    assert_eq!(
        line.contains("AWS-LC FIPS") && line.contains("FIPS 140-3 mode"),
        FIPS,
        "{line}"
    );

    let kms = server.client();
    let secp256k1 = kms
        .create_key()
        .key_spec(KeySpec::EccSecgP256K1)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await;
    let pairs = kms
        .generate_data_key_pair()
        .key_id(
            kms.create_key()
                .send()
                .await
                .expect("a symmetric key")
                .key_metadata()
                .expect("metadata")
                .key_id(),
        )
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccSecgP256K1)
        .send()
        .await;
    if FIPS {
        let e = secp256k1.expect_err("secp256k1 is not approved");
        assert_eq!(code(&e), "UnsupportedOperationException");
        assert!(
            message(&e).contains("ECC_SECG_P256K1 is not approved"),
            "{}",
            message(&e)
        );
        let e = pairs.expect_err("secp256k1 pairs are not approved");
        assert_eq!(code(&e), "UnsupportedOperationException");
        // Nothing was made by the refused CreateKey: only the symmetric key exists.
        let keys = kms.list_keys().send().await.expect("ListKeys");
        assert_eq!(keys.keys().len(), 1);
    } else {
        secp256k1.expect("secp256k1 keys outside a FIPS build");
        pairs.expect("secp256k1 pairs outside a FIPS build");
    }
    // What every build approves works in this one.
    for (spec, usage) in [
        (KeySpec::EccNistP256, KeyUsageType::SignVerify),
        (KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify),
        (KeySpec::MlDsa44, KeyUsageType::SignVerify),
        (KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt),
        (KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac),
    ] {
        kms.create_key()
            .key_spec(spec.clone())
            .key_usage(usage)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec:?}: {e:?}"));
    }
    server.stop();
}

/// The binary links one AWS-LC: a FIPS build has the FIPS module's symbols and none of the
/// other library's (rustls's feature still compiles aws-lc-sys; nothing may call it), and a
/// normal build the reverse, which shows the search finds what is there.
#[test]
fn the_binary_links_only_its_own_module() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_ferrokms")).expect("read the binary");
    let has = |needle: &[u8]| binary.windows(needle.len()).any(|w| w == needle);
    // The symbol prefixes of aws-lc-fips-sys and of aws-lc-sys.
    let fips_module = has(b"aws_lc_fips_0_");
    let other_module = has(b"aws_lc_0_");
    assert_eq!(
        fips_module, FIPS,
        "FIPS module symbols present: {fips_module}"
    );
    assert_eq!(
        other_module, !FIPS,
        "non-FIPS AWS-LC symbols present: {other_module}"
    );
}
