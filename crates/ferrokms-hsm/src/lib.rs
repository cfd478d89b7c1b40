//! PKCS#11 tokens (HSMs) behind ferrokms: the root key kept inside one, and AES keys made and used inside a token without ever leaving it.

mod root;
mod token;

pub use root::HsmRootKey;
pub use token::{HsmError, Pin, Token, TokenKey, TokenSpec};
