//! The ferrokms service: HTTP with the awsJson1_1 protocol (and STS's query protocol and
//! the CloudTrail API), SigV4 authentication, the KMS operations, the audit trail, and the
//! setup of a data directory.
//!
//! # A request's one way through
//! `http::handle` runs every request through the same stages, each in one place:
//! 1. read and limit the body (`http::read_body`);
//! 2. authenticate: `sigv4` makes the `VerifiedRequest`, the only way to one; a failure is
//!    recorded compactly and rate-limited per source (`unauthenticated`);
//! 3. look the operation up: `http::Api` names the API by the signed service and the
//!    operation by its table (`api::operations` for KMS, `sts::ACTIONS`, LookupEvents), so
//!    names in records and metrics never come from the request;
//! 4. rate-limit (`api::admit`, `quotas`); operations rated by their key's class are counted
//!    once the key is resolved (`api::resolve`);
//! 5. authorize and run the handler: `api::dispatch` runs one module per API group;
//!    `api::authorize` decides each permission with the key policy, the caller's IAM
//!    policies and grants and hands out `AuthorizedKey`s, and an answer needs every
//!    permission the table lists decided;
//! 6. audit: the record is built once (`audit::event`), its first version carried by every
//!    write as the `Intent` the store requires, its final version made durable by the group
//!    committer (`audit::AuditLog`) before the answer leaves;
//! 7. answer, with metrics and the log line (`App::observe`).
//!
//! # Changes no request asked for
//! `ferrokms admin`, the config file's users and roles, its seeded keys (`seed`), first
//! start and root-key moves go through `audit::Changes`; background jobs (`jobs`) write service
//! events. The audit chain is signed in linked digests whose public key lives outside the
//! store (`audit::anchor`), checked by `audit::verify`.
//!
//! Elsewhere: `bootstrap` (data directory, admin credentials), `identities`, `root_of_trust`
//! (root key file or HSM), `key_stores` and `xks` (custom key stores), `client` (SigV4 and TLS
//! when ferrokms calls out: an XKS proxy, or a node for the Kubernetes plugin), `explain` (`policy
//! explain`), `tls`, `listener`, `regions`, `metrics`, `console` (the web console's files,
//! served before authentication because they are only a client that signs its own calls).

mod api;
pub mod audit;
mod bootstrap;
pub mod client;
mod clock;
pub mod console;
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
pub mod seed;
mod sigv4;
mod sts;
pub mod tls;
mod unauthenticated;
mod wire;
pub mod xks;

pub use bootstrap::{now_millis, restore, AdminCredentials, AuditAnchor, DataDir};
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
