//! Which cryptographic module this build runs on (`--features fips`: the FIPS 140-3 module
//! of AWS-LC, through aws-lc-rs and aws-lc-fips-sys), its self-tests, and what such a build
//! refuses because the module does not approve it.
//!
//! What the module approves is read from its service indicator as AWS-LC's own tests
//! exercise it: ECDSA only on the NIST curves (not secp256k1), EdDSA (Ed25519 and
//! Ed25519ph), ML-DSA, RSA signatures, ECDH on the NIST curves, AES-GCM encryption only
//! with an IV drawn inside the module (which every AES-GCM encryption here does), AES key
//! wrap, HMAC and HKDF. SM2 is not in AWS-LC at all. docs/deployment.md lists the same.

use std::fmt;
use std::time::{Duration, Instant};

use crate::key::KeySpec;
use crate::KmsError;

/// True in a build with `--features fips`.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// The linked module, as the banner and `--version` show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoModule {
    /// "AWS-LC FIPS" or "AWS-LC".
    pub name: &'static str,
    /// The library's own version, e.g. "4.2.0".
    pub version: String,
    /// The FIPS module version this build corresponds to (4 for AWS-LC-FIPS 4.x).
    pub fips_module: Option<u32>,
    /// Whether the library runs in FIPS mode (only a FIPS build can).
    pub fips_mode: bool,
}

pub fn module() -> CryptoModule {
    CryptoModule {
        name: if FIPS_BUILD { "AWS-LC FIPS" } else { "AWS-LC" },
        version: aws_lc_rs::awslc_version().to_owned(),
        fips_module: if FIPS_BUILD {
            aws_lc_rs::fips_version()
        } else {
            None
        },
        fips_mode: aws_lc_rs::try_fips_mode().is_ok(),
    }
}

impl fmt::Display for CryptoModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)?;
        if let Some(m) = self.fips_module {
            write!(f, " (FIPS module {m}.x)")?;
        }
        if self.fips_mode {
            f.write_str(", FIPS 140-3 mode")
        } else {
            f.write_str(", not in FIPS mode")
        }
    }
}

/// Runs the module's known-answer self-tests (in a FIPS build the module also ran them at
/// power-on, and aborts the process on a mismatch); how long they took.
pub fn self_test() -> Result<Duration, KmsError> {
    let started = Instant::now();
    aws_lc_rs::try_fips_self_test()
        .map_err(|_| KmsError::Internal("the cryptographic self-tests failed".into()))?;
    Ok(started.elapsed())
}

/// Whether keys of `spec` may be made or used in this build.
pub fn approves(spec: KeySpec) -> bool {
    !(FIPS_BUILD && matches!(spec, KeySpec::EccSecgP256k1 | KeySpec::Sm2))
}

/// `approves`, as the error a request gets.
pub fn check_key_spec(spec: KeySpec) -> Result<(), KmsError> {
    if approves(spec) {
        Ok(())
    } else {
        Err(KmsError::UnsupportedOperation(format!(
            "KeySpec {} is not approved by this service's FIPS 140-3 cryptographic module",
            spec.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_says_what_it_is_and_its_self_tests_pass() {
        let m = module();
        assert_eq!(m.fips_mode, FIPS_BUILD, "{m}");
        assert!(m.to_string().starts_with(m.name));
        assert!(!m.version.is_empty());
        self_test().unwrap();
    }

    #[test]
    fn a_fips_build_refuses_what_its_module_does_not_approve() {
        assert_eq!(approves(KeySpec::EccSecgP256k1), !FIPS_BUILD);
        for spec in [
            KeySpec::SymmetricDefault,
            KeySpec::Rsa2048,
            KeySpec::EccNistP256,
            KeySpec::EccNistEdwards25519,
            KeySpec::MlDsa65,
            KeySpec::Hmac256,
        ] {
            assert!(approves(spec), "{spec:?}");
            assert!(check_key_spec(spec).is_ok());
        }
        if FIPS_BUILD {
            let e = check_key_spec(KeySpec::EccSecgP256k1).unwrap_err();
            assert!(e.to_string().contains("ECC_SECG_P256K1"), "{e}");
        }
    }
}
