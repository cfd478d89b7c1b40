//! PKCS#11 tokens (HSMs) behind ferrokms: the root key kept inside one, and AES keys made
//! and used inside a token without ever leaving it.
//!
//! # Map
//! - `token`: a session on a token found by label (and slot), its PIN (zeroized, never
//!   printed), and the keys inside it: made non-extractable, found by label, used for
//!   AES-GCM and AES key wrap by the token itself.
//! - `root`: [`HsmRootKey`], a `RootKeyProvider` whose wrapping key never leaves the token.
//!
//! Tested against SoftHSM2 (`tests/softhsm.rs`), as a real PKCS#11 module.

mod root;
mod token;

pub use root::HsmRootKey;
pub use token::{HsmError, Pin, Token, TokenKey, TokenSpec};
