//! The ferrokms service: HTTP with the awsJson1_1 protocol, SigV4 authentication, the KMS operations, and the setup of a data directory.

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
mod wire;
pub mod xks;

pub use bootstrap::{restore, AdminCredentials, DataDir};
pub use http::{serve, Mode, ServerConfig};
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
