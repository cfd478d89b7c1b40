//! The audit trail: one CloudTrail record per request, successful or not, chained by hashes
//! and made durable in batches (group commit) before the request is answered.

pub mod event;
mod log;
pub mod lookup;
pub mod verify;

pub use log::AuditLog;

use crate::sigv4::sha256_hex;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Links an event to the chain: SHA-256 over the previous hash, its sequence number and the
/// event exactly as stored.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &str) -> String {
    sha256_hex(format!("{prev_hash}\n{seq}\n{event}").as_bytes())
}
