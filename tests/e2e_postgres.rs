//! The end-to-end API suite of `tests/e2e` against the PostgreSQL backend: every server the
//! harness starts keeps its state in a database of its own on the test environment's
//! PostgreSQL (`FERROKMS_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432).
//! Every module of `e2e` runs here, plus `nodes` and `faults`, which need a shared database,
//! and `ha`, on the reference HA deployment of `tests/ha/cluster.sh`.

#[path = "e2e/aliases.rs"]
mod aliases;
#[path = "e2e/asymmetric.rs"]
mod asymmetric;
#[path = "e2e/audit.rs"]
mod audit;
#[path = "e2e/auth.rs"]
mod auth;
#[path = "e2e/authorization.rs"]
mod authorization;
#[path = "e2e/backup.rs"]
mod backup;
#[path = "e2e/cli.rs"]
mod cli;
#[path = "e2e/crypto.rs"]
mod crypto;
#[path = "e2e/custom_key_stores.rs"]
mod custom_key_stores;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/grants.rs"]
mod grants;
#[path = "e2e/ha.rs"]
mod ha;
#[path = "e2e/xks.rs"]
mod xks;
// Shared with `e2e`, which uses all of it.
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/hsm.rs"]
mod hsm;
#[path = "e2e/identities.rs"]
mod identities;
#[path = "e2e/interop.rs"]
mod interop;
#[path = "e2e/keys.rs"]
mod keys;
#[path = "e2e/lifecycle.rs"]
mod lifecycle;
#[path = "e2e/multi_region.rs"]
mod multi_region;
#[path = "e2e/nodes.rs"]
mod nodes;
#[path = "e2e/persistence.rs"]
mod persistence;
#[path = "e2e/pipeline.rs"]
mod pipeline;
#[path = "e2e/policies.rs"]
mod policies;
#[path = "e2e/protocol.rs"]
mod protocol;
#[path = "e2e/quotas.rs"]
mod quotas;
#[path = "e2e/roles.rs"]
mod roles;
#[path = "e2e/seed.rs"]
mod seed;
#[path = "e2e/support.rs"]
mod support;
#[path = "e2e/tags.rs"]
mod tags;

pub use support::*;

pub const POSTGRES: bool = true;
