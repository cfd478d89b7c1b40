//! Domain and cryptography of ferrokms, free of I/O: identifiers, key metadata and its state machine, key material, encryption context and the ciphertext blob format.

pub mod asymmetric;
pub mod ciphertext;
pub mod context;
pub mod error;
pub mod grant;
pub mod ids;
pub mod import;
pub mod key;
pub mod material;
pub mod policy;
pub mod random;
pub mod tags;

pub use error::KmsError;
