//! DER public keys as Verify and DeriveSharedSecret receive them: whatever the bytes, an
//! answer (false or an error), never a panic.
#![no_main]
use std::sync::OnceLock;

use ferrokms_core::asymmetric::{self, NewMaterial};
use ferrokms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use libfuzzer_sys::fuzz_target;

fn p256() -> &'static NewMaterial {
    static KEY: OnceLock<NewMaterial> = OnceLock::new();
    KEY.get_or_init(|| asymmetric::generate(KeySpec::EccNistP256).expect("key"))
}

fuzz_target!(|data: &[u8]| {
    let (key, signature) = data.split_at(data.len() / 2);
    for (spec, alg) in [
        (KeySpec::EccNistP256, SigningAlgorithm::EcdsaSha256),
        (KeySpec::EccNistP384, SigningAlgorithm::EcdsaSha384),
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPssSha256),
        (KeySpec::Rsa2048, SigningAlgorithm::RsassaPkcs1V15Sha256),
    ] {
        let verified = asymmetric::verify(spec, key, alg, MessageType::Raw, b"message", signature);
        assert!(!matches!(verified, Ok(true)), "a forged signature verified");
    }
    let _ = asymmetric::derive_shared_secret(KeySpec::EccNistP256, &p256().material, data);
});
