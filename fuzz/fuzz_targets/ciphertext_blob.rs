//! The ciphertext blob parser, and opening whatever parses under a key it was not made with:
//! every outcome must be an error, never a panic or a plaintext.
#![no_main]
use std::sync::OnceLock;

use ferrokms_core::ciphertext::{open, parse_header};
use ferrokms_core::context::EncryptionContext;
use ferrokms_core::material::KeyMaterial;
use libfuzzer_sys::fuzz_target;

fn material() -> &'static KeyMaterial {
    static MATERIAL: OnceLock<KeyMaterial> = OnceLock::new();
    MATERIAL.get_or_init(|| KeyMaterial::generate_symmetric().expect("random"))
}

fuzz_target!(|blob: &[u8]| {
    if let Ok(header) = parse_header(blob) {
        let opened = open(material(), &header, blob, &EncryptionContext::default());
        assert!(opened.is_err(), "a forged blob opened");
    }
});
