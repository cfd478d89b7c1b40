//! The JSON request decoder and the member readers every operation uses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    ferrokms_server::fuzzing::request_body(body);
});
