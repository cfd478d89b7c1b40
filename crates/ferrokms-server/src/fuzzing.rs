//! Entry points for the fuzz targets in `fuzz/`: the parsers of what clients send, reachable
//! without a running server. Not an API; nothing here keeps state.

use ferrokms_core::key::{KeySpec, SigningAlgorithm};

use crate::sigv4::{parse_amz_date, AuthorizationHeader};
use crate::wire::{decode_marker, Input};

/// A request body through the JSON decoder and every kind of member reader the operations
/// use (strings, blobs, maps, lists, integers, enums, tags, timestamps, booleans).
pub fn request_body(body: &[u8]) {
    let Ok(mut input) = Input::parse(body) else {
        return;
    };
    let _ = input.string("KeyId", 1, 2048);
    let _ = input.blob("Plaintext", 1, 4096);
    let _ = input.blob("CiphertextBlob", 1, 6144);
    let _ = input.string_map("EncryptionContext");
    let _ = input.string_list("GrantTokens", 1, 8192, 10);
    let _ = input.integer("NumberOfBytes", 1, 1024);
    let _ = input.enumeration("KeySpec", KeySpec::parse, KeySpec::ALL);
    let _ = input.enumeration(
        "SigningAlgorithm",
        SigningAlgorithm::parse,
        SigningAlgorithm::ALL,
    );
    let _ = input.tags("Tags");
    let _ = input.timestamp("ValidTo");
    let _ = input.boolean("DryRun");
    let _ = input.string("Policy", 1, 131_072);
    if let Ok(Some(marker)) = input.string("Marker", 1, 1024) {
        let _ = decode_marker(Some(&marker));
    }
    let _ = input.raw("Constraints");
    let _ = input.finish();
}

/// An `Authorization` header (with and without a date header) and an `X-Amz-Date` value.
pub fn authorization_header(raw: &str) {
    let _ = AuthorizationHeader::parse(raw, true);
    let _ = AuthorizationHeader::parse(raw, false);
    let _ = parse_amz_date(raw);
}
