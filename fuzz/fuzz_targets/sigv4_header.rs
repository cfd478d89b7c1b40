//! The SigV4 `Authorization` header parser and the `X-Amz-Date` parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ferrokms_server::fuzzing::authorization_header(text);
    }
});
