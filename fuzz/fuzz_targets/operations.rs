//! Every operation's request decoding and validation, through its real handler over an
//! SQLite store: the first byte picks the operation, the rest is its JSON body.
#![no_main]
use std::sync::OnceLock;

use ferrokms_server::fuzzing::Operations;
use libfuzzer_sys::fuzz_target;

fn operations() -> &'static Operations {
    static OPERATIONS: OnceLock<Operations> = OnceLock::new();
    OPERATIONS.get_or_init(Operations::new)
}

fuzz_target!(|data: &[u8]| {
    operations().run(data);
});
