//! Domain and cryptography of ferrokms, free of I/O: what a key is and may do, and every
//! decision that does not need the network or the disk.
//!
//! # Map
//! - [`ids`]: account ids, Regions, key ids and ARNs, alias names, key references as callers
//!   write them; parsing is where invalid input is refused.
//! - [`key`]: `KeyMetadata`, its specs, usages and the key-state machine (enable, disable,
//!   schedule deletion, rotation schedule, imported material), with AWS's error for each
//!   refused transition.
//! - [`material`]: key material (zeroized on drop, never `Debug`-printed), its ids, and the
//!   `RootKeyProvider` that wraps material at rest (a file or an HSM behind it).
//! - [`ciphertext`] and [`context`]: the ciphertext blob format and the encryption context
//!   bound into it as additional authenticated data.
//! - [`imported`]: the materials of a key of imported material, each with its state and
//!   expiry, and the moves ImportKeyMaterial, DeleteImportedKeyMaterial and
//!   RotateKeyOnDemand make.
//! - [`asymmetric`], [`import`], [`random`]: signing, key agreement, RSA encryption and
//!   imported-material unwrapping, all through aws-lc-rs; [`precomputed`], the one module
//!   that calls aws-lc-sys (and the only `unsafe`): Ed25519ph and ML-DSA external μ.
//! - [`policy`]: IAM policy documents and their evaluation (conditions, set operators,
//!   principals), `decide` and `explain`; [`grant`]: grants and their constraints.
//! - [`tags`], [`error`]: tag rules, and `KmsError`, which carries each AWS error type, with
//!   one constructor for every message it carries (checked against AWS's recorded messages).
//!
//! Nothing here reads a clock or a file: time comes in as a parameter, so the same call
//! decides the same way in a request, a background job and `ferrokms policy explain`.

pub mod asymmetric;
pub mod ciphertext;
pub mod context;
pub mod error;
pub mod fips;
pub mod grant;
pub mod hex;
pub mod ids;
pub mod import;
pub mod imported;
pub mod key;
pub mod material;
pub mod policy;
pub mod precomputed;
pub mod random;
#[cfg(any(test, feature = "reference"))]
pub mod reference;
pub mod tags;

pub use error::KmsError;
