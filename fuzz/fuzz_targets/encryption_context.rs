//! The encryption-context canonicaliser: any map a request can carry gives the same bytes
//! however its JSON orders the entries.
#![no_main]
use std::collections::BTreeMap;

use ferrokms_core::context::EncryptionContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = serde_json::from_slice::<BTreeMap<String, String>>(data) else {
        return;
    };
    let reversed: BTreeMap<String, String> = entries.clone().into_iter().rev().collect();
    let a = EncryptionContext::new(entries);
    let b = EncryptionContext::new(reversed);
    assert_eq!(a.canonical_bytes(), b.canonical_bytes());
    let _ = a.size_bytes();
});
