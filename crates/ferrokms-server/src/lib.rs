//! The ferrokms service: HTTP with the awsJson1_1 protocol, SigV4 authentication, the KMS operations, and the setup of a data directory.
//!
//! Map of a request: `http` reads and limits the body; `sigv4` makes the `VerifiedRequest`
//! (the only way to one); `api::operations` is the table of the 54 operations (permissions
//! per resource, cross-account use, aliases, rate, writes, audited members); `api` counts
//! the rate and runs the handler; `api::authorize` decides each permission with the key
//! policy, the caller's IAM policies and grants (`ferrokms_core::policy` evaluates, for
//! STS and the CloudTrail API too) and hands out `AuthorizedKey`s; `audit` records the
//! call; `explain` decides an imagined request with the same code for `policy explain`.

mod api;
pub mod audit;
mod bootstrap;
mod clock;
mod error;
pub mod explain;
#[doc(hidden)]
pub mod fuzzing;
mod http;
pub mod identities;
mod jobs;
pub mod key_stores;
pub mod listener;
mod material_cache;
mod metrics;
mod quotas;
pub mod regions;
mod root_file;
pub mod root_of_trust;
mod sigv4;
mod sts;
pub mod tls;
mod unauthenticated;
mod wire;
pub mod xks;

pub use bootstrap::{restore, AdminCredentials, AuditAnchor, DataDir};
pub use http::{serve, MetricsAccess, Mode, ServerConfig};
pub use quotas::{QuotaConfig, ResourceQuotas};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Io(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] ferrokms_store::StoreError),
    #[error("the system random generator failed")]
    Random,
}
