//! End-to-end tests: the real `ferrokms` binary over real HTTP, driven by the real
//! `aws-sdk-kms` client (and by raw requests signed with `aws-sigv4` where a client would not
//! send what we need to test).

mod aliases;
mod asymmetric;
mod audit;
mod auth;
mod authorization;
mod backup;
mod cli;
mod console;
mod crash;
mod crypto;
mod custom_key_stores;
mod explain_api;
mod fips;
mod grants;
// Shared with `e2e_postgres`; some of it serves only that suite.
#[allow(dead_code)]
mod harness;
mod hsm;
mod hygiene;
mod identities;
mod integrity;
mod interop;
mod keys;
mod kubernetes;
mod lifecycle;
mod limits;
mod multi_region;
mod operations;
mod package;
mod persistence;
mod pipeline;
mod policies;
mod protocol;
mod quotas;
mod review;
mod roles;
mod seed;
mod support;
mod surface;
mod tags;
mod tls;
mod xks;

pub use support::*;

/// This suite runs against the embedded SQLite store; `e2e_postgres` runs it against PostgreSQL.
pub const POSTGRES: bool = false;
