//! The command line and the config file: what each subcommand takes, and the rules a
//! server's settings must follow before anything starts (dev mode only on loopback, no
//! plain HTTP beyond loopback unless asked for, ...), decided in [`ServePlan::decide`] where
//! they can be tested without starting anything.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ferrokms_core::ids::AccountId;
use ferrokms_server::tls::TlsFiles;
use ferrokms_server::{identities, Mode};
use serde::Deserialize;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:4599";
pub(crate) const DEFAULT_DATA_DIR: &str = "ferrokms-data";
pub(crate) const DEFAULT_DEV_ACCOUNT: &str = "000000000000";
/// The account of seeded keys that name none, outside --dev: the first-start admin's.
pub(crate) const DEFAULT_SEED_ACCOUNT: &str = "111122223333";

#[derive(Parser)]
#[command(
    name = "ferrokms",
    version,
    about = "A key management service that speaks the AWS KMS API"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Manage users, access keys and identity policies in a data directory (works while the
    /// service runs; changes apply to the next request).
    Admin(AdminArgs),
    /// Check or export the audit trail of a data directory.
    Audit(AuditArgs),
    /// Write every key, alias, grant, policy, principal and audit event to a file (JSON
    /// Lines). Key material and secrets stay wrapped under the root key, which a backup never
    /// holds: keep the root-key file safe on its own.
    Backup(BackupArgs),
    /// Load a backup into an empty store. The data directory must already hold the root key
    /// of the service that was backed up.
    Restore(RestoreArgs),
    /// Set up a data directory: its root key (a file, or with --hsm a key made inside a
    /// PKCS#11 token), its database and the admin's access key pair.
    Init(InitArgs),
    /// Rewrap every key's material, access-key secret and the audit signing key under the
    /// HSM's root key (--to hsm) or the root-key file (--to file). Key ids and ciphertexts do
    /// not change. Each batch is one transaction; an interrupted move resumes where it
    /// stopped when run again, and the data directory reads both root keys meanwhile.
    MigrateRootKey(MigrateArgs),
    /// Explain authorization: `policy explain` decides a request as the server would (key
    /// policy, the caller's IAM policies, grants) and shows every statement and grant that
    /// applied or not, with the condition that failed.
    Policy(PolicyArgs),
    /// Serve the XKS Proxy API in front of a PKCS#11 token, so that a ferrokms (or AWS KMS)
    /// external key store can use the token's keys; or make a key in that token.
    XksProxy(XksProxyArgs),
    /// Serve the Kubernetes KMS v2 plugin API on a Unix socket for the kube-apiserver,
    /// keeping its secrets with a ferrokms key (called over HTTPS with SigV4, as any client).
    KubernetesKmsPlugin(KubernetesKmsPluginArgs),
    /// Check a data directory without changing it: file modes and owners, the root key (file
    /// or HSM login), the store (reachable, schema version), the clock against the
    /// database's, the TLS certificate's expiry. Exits 1 if anything needs action.
    Doctor(DoctorArgs),
    /// Print a shell completion script for ferrokms (bash, zsh, fish, elvish, powershell);
    /// e.g. `ferrokms completions bash > /etc/bash_completion.d/ferrokms`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), made from the same definition as --help; with
    /// --out-dir, write it and one page per subcommand (ferrokms-serve.1, ...) there.
    Man {
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// `--version`: the release and the cryptographic module it runs on, e.g.
/// `ferrokms 0.1.0 (AWS-LC FIPS 4.2.0 (FIPS module 4.x), FIPS 140-3 mode)`.
pub(crate) fn version() -> String {
    format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        ferrokms_core::fips::module()
    )
}

/// The command line, with `--version` naming the module this build links.
pub(crate) fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().version(version()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// How log lines are written (`FERROKMS_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One line for people (the default).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    pub(crate) fn from_env(value: Option<&str>) -> Result<LogFormat> {
        match value {
            None | Some("") | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => bail!("FERROKMS_LOG_FORMAT must be text or json, not {other:?}"),
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct PolicyArgs {
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    #[arg(long, env = "FERROKMS_STORE", global = true)]
    pub(crate) store: Option<String>,
    /// The service's config file, for its `[quotas]` (how many grants, tags and aliases a
    /// key's conditions may see).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: PolicyCommand,
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide one request and say why. Exits 0 when it would be allowed, 1 when denied.
    Explain {
        /// The caller's ARN: arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME or
        /// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
        #[arg(long)]
        caller: String,
        /// The action, e.g. kms:Decrypt.
        #[arg(long)]
        action: String,
        /// The key (id, ARN, alias name or alias ARN); leave out for actions on `*`.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// An encryption context pair KEY=VALUE (repeat for more).
        #[arg(long = "encryption-context", value_name = "KEY=VALUE")]
        encryption_context: Vec<String>,
        /// Another condition key of the request, KEY=VALUE (kms:SigningAlgorithm=...).
        #[arg(long = "condition", value_name = "KEY=VALUE")]
        conditions: Vec<String>,
        /// The address the request comes from (aws:SourceIp).
        #[arg(long, default_value = "127.0.0.1")]
        source_ip: std::net::IpAddr,
        /// The request comes over HTTPS (aws:SecureTransport true).
        #[arg(long)]
        tls: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct XksProxyArgs {
    /// The proxy's TOML: listen, tls_cert, tls_key, uri_path_prefix, module, token_label,
    /// pin_file or pin_env, and `[[credentials]]` (access_key_id, secret_access_key).
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: XksProxyCommand,
}

#[derive(Subcommand)]
pub(crate) enum XksProxyCommand {
    /// Serve the proxy.
    Serve,
    /// Make an external key: a non-extractable AES-256 key in the token, labelled KEY_ID.
    CreateKey {
        #[arg(long)]
        key_id: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct DoctorArgs {
    /// The service's config file: its data_dir, store and tls_cert are checked.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The data directory [default: the config's, or ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL store instead of the data directory's SQLite file.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// A running node to check (it answers, its clock, its certificate), e.g.
    /// https://kms.internal:8443; alone, only the node is checked.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// PEM certificates of CAs to trust for --endpoint, besides the system's.
    #[arg(long)]
    pub(crate) ca_bundle: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct KubernetesKmsPluginArgs {
    /// The Unix socket the API server's EncryptionConfiguration names as its endpoint
    /// (`unix:///var/run/kmsplugin/socket.sock` is --socket /var/run/kmsplugin/socket.sock).
    #[arg(long)]
    pub(crate) socket: PathBuf,
    /// The ferrokms key: an id, key ARN, alias name or alias ARN. Rotate it with KMS
    /// rotation (automatic or on demand): the plugin's key id follows its material.
    #[arg(long)]
    pub(crate) key_id: String,
    /// The ferrokms node, e.g. https://kms.internal:8443.
    #[arg(long, env = "AWS_ENDPOINT_URL_KMS")]
    pub(crate) endpoint: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
    /// A file of `export AWS_ACCESS_KEY_ID=...` and `export AWS_SECRET_ACCESS_KEY=...`
    /// lines (mode 600); without it, those variables of the environment.
    #[arg(long)]
    pub(crate) credentials_file: Option<PathBuf>,
    /// PEM certificates of CAs to trust for the node, besides the system's.
    #[arg(long)]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// KEY=VALUE, repeatable: the encryption context of every GenerateDataKey and Decrypt,
    /// for key policies to require. Keep it unchanged while sealed data exists.
    #[arg(long = "encryption-context", value_name = "KEY=VALUE")]
    pub(crate) encryption_context: Vec<String>,
    /// Allow a plain http:// endpoint on another machine (data keys in the clear).
    #[arg(long)]
    pub(crate) insecure_http: bool,
}

#[derive(clap::Args)]
pub(crate) struct InitArgs {
    /// The data directory [default: ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database to keep state in instead of ferrokms.db in the data directory.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// Keep the root key inside a PKCS#11 token: made there (non-extractable) if the token
    /// has no key with --key-label, and named in `<data-dir>/hsm.toml`.
    #[arg(long, requires_all = ["module", "token_label"])]
    pub(crate) hsm: bool,
    /// The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, requires = "hsm")]
    pub(crate) module: Option<PathBuf>,
    /// The label of the token.
    #[arg(long, requires = "hsm")]
    pub(crate) token_label: Option<String>,
    /// The token's slot, where labels alone are not unique (partitions of one HSM).
    #[arg(long, requires = "hsm")]
    pub(crate) slot: Option<u64>,
    /// The label of the root key inside the token.
    #[arg(long, requires = "hsm", default_value = "ferrokms-root")]
    pub(crate) key_label: String,
    /// A file (mode 0600) holding the token user's PIN.
    #[arg(long, requires = "hsm", conflicts_with = "pin_env")]
    pub(crate) pin_file: Option<PathBuf>,
    /// An environment variable holding the token user's PIN.
    #[arg(long, requires = "hsm")]
    pub(crate) pin_env: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// The data directory [default: ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The PostgreSQL database of the service, if it keeps its state in one.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// The root key to move to.
    #[arg(long)]
    pub(crate) to: RootTarget,
    /// Rewrap at most this many secrets in this run (a long move can be spread over several
    /// runs; the service reads both root keys in between).
    #[arg(long)]
    pub(crate) at_most: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum RootTarget {
    Hsm,
    File,
}

#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// The data directory [default: ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The PostgreSQL database of the service, if it keeps its state in one.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// The file to write (mode 0600) [default: standard output].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// The data directory, holding the root key of the backed-up service
    /// [default: ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database to restore into instead of ferrokms.db in the data directory.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// The backup file.
    #[arg(long)]
    pub(crate) from: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    /// The data directory [default: ./ferrokms-data].
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database to keep state in (postgres://user@host/db) instead of
    /// ferrokms.db in the data directory; nodes sharing it must share the root key too.
    #[arg(long, env = "FERROKMS_STORE", global = true)]
    pub(crate) store: Option<String>,
    #[command(subcommand)]
    pub(crate) command: AuditCommand,
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the hash chain and the signed digests; name the first event changed, removed,
    /// inserted or reordered, and the first digest forged, removed or replaced.
    Verify {
        /// The audit signing key's public half (PEM), from wherever you keep it
        /// [default: audit-signing-key.pem in the data directory]. Never read from the store.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A copy of the digests (`audit export-digests`, or the server's `audit_digest_dir`):
        /// each must still be in the store, which shows events cut off the end.
        #[arg(long)]
        digests: Option<PathBuf>,
    },
    /// Write every signed digest to DIR/audit-digests.jsonl, with the public key beside
    /// them, so that a copy can live off this machine.
    ExportDigests { dir: PathBuf },
    /// Write events as JSON Lines (CloudTrail records), oldest first.
    Export {
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events that name this key ARN.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(clap::Args)]
pub(crate) struct AdminArgs {
    /// The data directory to manage [default: ./ferrokms-data].
    #[arg(long, global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database to keep state in (postgres://user@host/db) instead of
    /// ferrokms.db in the data directory; nodes sharing it must share the root key too.
    #[arg(long, env = "FERROKMS_STORE", global = true)]
    pub(crate) store: Option<String>,
    /// The account of the user [default: 111122223333].
    #[arg(long, global = true, default_value = "111122223333")]
    pub(crate) account: String,
    #[command(subcommand)]
    pub(crate) command: AdminCommand,
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create an IAM user.
    CreateUser {
        #[arg(long)]
        user: String,
    },
    /// Issue a new access key pair for a user and print it as export lines.
    CreateAccessKey {
        #[arg(long)]
        user: String,
    },
    /// Revoke an access key.
    DeleteAccessKey {
        #[arg(long)]
        access_key_id: String,
    },
    /// Attach (or replace) a named identity policy; the document is JSON or @file.
    PutUserPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        policy_document: String,
    },
    /// Detach a named identity policy.
    DeleteUserPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        policy_name: String,
    },
    /// Create an IAM role; without a trust policy its own account may assume it.
    CreateRole {
        #[arg(long)]
        role: String,
        /// JSON, or @file.
        #[arg(long)]
        trust_policy: Option<String>,
        /// The longest session AssumeRole gives, in seconds (3600 to 43200; default 3600).
        #[arg(long)]
        max_session_duration: Option<i64>,
    },
    /// Attach (or replace) a named identity policy of a role; the document is JSON or @file.
    PutRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        policy_document: String,
    },
    /// List users and roles with their access key ids.
    ListUsers,
}

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4599].
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Where keys, the root key and credentials live [default: ./ferrokms-data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL database to keep state in (postgres://user@host/db) instead of
    /// ferrokms.db in the data directory; nodes sharing it must share the root key too.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    /// A TOML file with `listen`, `data_dir`, `store`, `dev`, `dev_account_id`, users and
    /// roles; flags override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Local-testing mode: loopback only, any access key and secret accepted, signatures
    /// not checked.
    #[arg(long)]
    pub(crate) dev: bool,
    /// The account that dev-mode callers without a 12-digit access key id act in.
    #[arg(long)]
    pub(crate) dev_account_id: Option<String>,
    /// Keep the store in a temporary folder that is removed at exit.
    #[arg(long)]
    pub(crate) ephemeral: bool,
    /// Dev mode only: serve /ferrokms/debug/advance-clock and /ferrokms/debug/run-jobs so
    /// that tests can move time forward and run rotation and deletion at once.
    #[arg(long)]
    pub(crate) debug_clock: bool,
    /// Serve Prometheus metrics at GET /metrics (they name keys, so they are off by default).
    #[arg(long)]
    pub(crate) metrics: bool,
    /// Dev mode only: keep no audit log, to measure what auditing costs.
    #[arg(long)]
    pub(crate) no_audit: bool,
    /// Enforce AWS's request-rate quotas (ThrottlingException): on by default outside
    /// --dev; overrides `enabled` in the config's `[quotas]`.
    #[arg(long)]
    pub(crate) quotas: Option<Switch>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. SIGHUP reloads both.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Dev mode only: serve HTTPS with a self-signed certificate for localhost, made once in
    /// the data directory (dev-tls-cert.pem, for clients' CA bundle).
    #[arg(long, conflicts_with = "tls_cert")]
    pub(crate) dev_tls: bool,
    /// On SIGTERM, answer `GET /ferrokms/health` with 503 for this long while still serving,
    /// so that a load balancer checking it stops sending first; then stop accepting and
    /// finish what is open. Default 0.
    #[arg(long, value_parser = drain_seconds)]
    pub(crate) drain_seconds: Option<f64>,
    /// Keys to have at start, with fixed key ids and (in --dev) fixed material: a TOML file
    /// of `[[seed]]` tables, applied after the config file's own (README, "Seeded keys").
    #[arg(long)]
    pub(crate) seed: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback. Without TLS, request signatures
    /// stop no one who can read the traffic from replaying it, and answers (data keys among
    /// them) cross the network in the clear.
    #[arg(long)]
    pub(crate) insecure_http: bool,
    /// Serve the web console at /console/: on by default on loopback and in --dev,
    /// off elsewhere unless asked for; overrides the config's `console`.
    #[arg(long)]
    pub(crate) console: Option<Switch>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) store: Option<String>,
    #[serde(default)]
    pub(crate) dev: bool,
    pub(crate) dev_account_id: Option<String>,
    /// IAM users with their access keys and identity policies.
    #[serde(default)]
    pub(crate) users: Vec<identities::UserSpec>,
    /// IAM roles with their trust and identity policies, assumable through STS AssumeRole.
    #[serde(default)]
    pub(crate) roles: Vec<identities::RoleSpec>,
    /// Request-rate and resource quotas; AWS's where unset.
    #[serde(default)]
    pub(crate) quotas: ferrokms_server::QuotaConfig,
    /// As --drain-seconds.
    pub(crate) drain_seconds: Option<f64>,
    /// As --console on|off.
    pub(crate) console: Option<bool>,
    /// Keys to have at start (`[[seed]]`).
    #[serde(default)]
    pub(crate) seed: Vec<ferrokms_server::seed::SeedKey>,
    /// HTTPS: the certificate chain and its private key (PEM).
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    #[serde(default)]
    pub(crate) insecure_http: bool,
    /// Caps and timeouts per connection.
    #[serde(default)]
    pub(crate) limits: ferrokms_server::listener::ConnectionLimits,
    /// PKCS#11 tokens that AWS_CLOUDHSM custom key stores name as CloudHSM clusters.
    #[serde(default)]
    pub(crate) cloudhsm_clusters: Vec<ferrokms_server::key_stores::CloudHsmCluster>,
    /// How EXTERNAL_KEY_STORE custom key stores reach their XKS proxies.
    #[serde(default)]
    pub(crate) xks: ferrokms_server::xks::client::XksClientConfig,
    /// The Regions requests may be signed for; AWS's commercial Regions when unset.
    pub(crate) regions: Option<Vec<String>>,
    /// A directory (best on another machine's mount) where each signed audit digest is also
    /// written as it is made, for `audit verify --digests`.
    pub(crate) audit_digest_dir: Option<PathBuf>,
    /// A file holding the bearer token `/metrics` asks scrapers for (Prometheus's
    /// `authorization: credentials_file`).
    pub(crate) metrics_bearer_token_file: Option<PathBuf>,
}

/// A secret token from a file that only its owner may read.
pub(crate) fn read_token(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} may be read by others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let token = text.trim();
    if token.len() < 16 {
        bail!(
            "the token in {} is shorter than 16 characters",
            path.display()
        );
    }
    Ok(zeroize::Zeroizing::new(token.to_owned()))
}

fn drain_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=300.0).contains(&v) => Ok(v),
        _ => Err("a number of seconds from 0 to 300".into()),
    }
}

/// The `[[seed]]` tables of a `--seed` file.
pub(crate) fn read_seeds(path: &std::path::Path) -> Result<Vec<ferrokms_server::seed::SeedKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = zeroize::Zeroizing::new(text);
    let file: ferrokms_server::seed::SeedFile = parse_toml(path, &text)?;
    Ok(file.seed)
}

/// Parses a TOML file. toml's own errors quote the offending line, which in a seed may hold
/// key material: this says where and what is wrong, never the text.
fn parse_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        match line {
            Some(line) => {
                anyhow::anyhow!("parsing {}, line {line}: {}", path.display(), e.message())
            }
            None => anyhow::anyhow!("parsing {}: {}", path.display(), e.message()),
        }
    })
}

pub(crate) fn read_config(path: Option<&std::path::Path>) -> Result<FileConfig> {
    match path {
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
            parse_toml(path, &text)
        }
        None => Ok(FileConfig::default()),
    }
}

/// What `serve` will do, once the flags and the config file have passed the safety rules.
#[derive(Debug)]
pub(crate) struct ServePlan {
    pub(crate) listen: SocketAddr,
    pub(crate) mode: Mode,
    /// None with --ephemeral: a temporary folder is made at start.
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) store: Option<String>,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) dev_tls: bool,
    /// `/metrics`, and the file of the token scrapers present (None: dev mode, no token).
    pub(crate) metrics: Option<Option<PathBuf>>,
    /// Serve the web console at /console/.
    pub(crate) console: bool,
}

impl ServePlan {
    /// Merges the flags over the config file and refuses what would be unsafe.
    pub(crate) fn decide(args: &ServeArgs, file: &FileConfig) -> Result<ServePlan> {
        let dev = args.dev || file.dev;
        let listen = match args.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse()?,
        };
        if args.debug_clock && !dev {
            bail!(
                "--debug-clock lets anyone move the service's clock: it is refused outside --dev"
            );
        }
        if args.no_audit && !dev {
            bail!("--no-audit leaves calls unrecorded: it is refused outside --dev");
        }
        if dev && !listen.ip().is_loopback() {
            bail!("--dev accepts any credentials, so it listens on loopback only (not {listen})");
        }
        let mode = if dev {
            let id = args
                .dev_account_id
                .clone()
                .or_else(|| file.dev_account_id.clone())
                .unwrap_or_else(|| DEFAULT_DEV_ACCOUNT.to_owned());
            let default_account = AccountId::parse(&id)
                .with_context(|| format!("--dev-account-id must be 12 digits, not {id:?}"))?;
            Mode::Dev { default_account }
        } else {
            Mode::Strict
        };
        let tls = match (
            args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
            args.tls_key.clone().or_else(|| file.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!(
                "a TLS certificate needs its key, and a key its certificate (tls_cert, tls_key)"
            ),
        };
        if args.dev_tls && !dev {
            bail!("--dev-tls makes a self-signed certificate for local testing: it is refused outside --dev");
        }
        let insecure_http = args.insecure_http || file.insecure_http;
        let serves_tls = tls.is_some() || args.dev_tls;
        if !dev && !serves_tls && !listen.ip().is_loopback() && !insecure_http {
            bail!(
                "{listen} is reachable from other machines: give --tls-cert and --tls-key (or \
                 pass --insecure-http to serve plain HTTP there anyway)"
            );
        }
        let metrics = match (args.metrics, &file.metrics_bearer_token_file) {
            (false, _) => None,
            (true, Some(path)) => Some(Some(path.clone())),
            (true, None) if dev => Some(None),
            (true, None) => bail!(
                "--metrics names every account's keys: outside --dev give the config's \
                 metrics_bearer_token_file, the token a scraper must present"
            ),
        };
        let data_dir = match args.ephemeral {
            true => None,
            false => Some(
                args.data_dir
                    .clone()
                    .or_else(|| file.data_dir.clone())
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            ),
        };
        // The console is only a client of the API, but on an address other machines reach
        // it is one more thing served there, so it is asked for.
        let console = match args.console {
            Some(switch) => matches!(switch, Switch::On),
            None => file.console.unwrap_or(dev || listen.ip().is_loopback()),
        };
        Ok(ServePlan {
            listen,
            console,
            mode,
            data_dir,
            store: args.store.clone().or_else(|| file.store.clone()),
            tls,
            dev_tls: args.dev_tls,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str], config: &str) -> Result<ServePlan> {
        let cli = Cli::try_parse_from(["ferrokms", "serve"].iter().chain(args.iter()).copied())?;
        let Command::Serve(serve) = cli.command else {
            bail!("not serve");
        };
        let file: FileConfig = toml::from_str(config)?;
        ServePlan::decide(&serve, &file)
    }

    fn refused(args: &[&str], config: &str) -> String {
        match plan(args, config) {
            Ok(p) => panic!("{args:?} with {config:?} was allowed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_console_is_on_where_only_this_machine_reaches_it_unless_switched() {
        let tls = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];
        assert!(plan(&[], "").unwrap().console, "loopback");
        assert!(plan(&["--dev"], "").unwrap().console, "dev");
        let wide = |extra: &[&str], config: &str| {
            let mut args = vec!["--listen", "0.0.0.0:4599"];
            args.extend(tls);
            args.extend(extra);
            plan(&args, config).unwrap().console
        };
        assert!(!wide(&[], ""), "beyond loopback it is asked for");
        assert!(wide(&[], "console = true"));
        assert!(wide(&["--console", "on"], ""));
        assert!(
            !wide(&["--console", "off"], "console = true"),
            "the flag wins"
        );
        assert!(!plan(&["--console", "off"], "").unwrap().console);
    }

    #[test]
    fn dev_mode_listens_on_loopback_only() {
        assert!(plan(&["--dev"], "").is_ok());
        assert!(plan(&["--dev", "--listen", "[::1]:0"], "").is_ok());
        assert!(refused(&["--dev", "--listen", "0.0.0.0:4599"], "").contains("loopback only"));
        assert!(refused(&["--listen", "192.0.2.1:4599"], "dev = true").contains("loopback only"));
    }

    #[test]
    fn dev_only_switches_are_refused_in_strict_mode() {
        assert!(refused(&["--debug-clock"], "").contains("outside --dev"));
        assert!(refused(&["--no-audit"], "").contains("outside --dev"));
        assert!(refused(&["--dev-tls"], "").contains("outside --dev"));
        assert!(plan(&["--dev", "--debug-clock", "--no-audit", "--dev-tls"], "").is_ok());
    }

    #[test]
    fn plain_http_beyond_loopback_must_be_asked_for() {
        let message = refused(&["--listen", "0.0.0.0:4599"], "");
        assert!(
            message.contains("reachable from other machines"),
            "{message}"
        );
        assert!(plan(&["--listen", "0.0.0.0:4599", "--insecure-http"], "").is_ok());
        assert!(plan(&["--listen", "0.0.0.0:4599"], "insecure_http = true").is_ok());
        let tls = "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"";
        assert!(plan(&["--listen", "0.0.0.0:4599"], tls).is_ok());
        assert!(refused(&[], "tls_cert = \"c.pem\"").contains("needs its key"));
    }

    #[test]
    fn metrics_outside_dev_mode_need_a_token_file() {
        assert!(refused(&["--metrics"], "").contains("metrics_bearer_token_file"));
        let p = plan(&["--metrics"], "metrics_bearer_token_file = \"t\"").unwrap();
        assert_eq!(p.metrics, Some(Some(PathBuf::from("t"))));
        assert_eq!(
            plan(&["--metrics", "--dev"], "").unwrap().metrics,
            Some(None)
        );
        assert_eq!(plan(&[], "").unwrap().metrics, None);
    }

    #[test]
    fn flags_override_the_config_file() {
        let p = plan(
            &["--listen", "127.0.0.1:9000", "--data-dir", "flag-dir"],
            "listen = \"127.0.0.1:8000\"\ndata_dir = \"file-dir\"",
        )
        .unwrap();
        assert_eq!(p.listen.port(), 9000);
        assert_eq!(p.data_dir, Some(PathBuf::from("flag-dir")));
        assert_eq!(plan(&["--ephemeral"], "").unwrap().data_dir, None);
        assert!(refused(&["--dev", "--dev-account-id", "12"], "").contains("12 digits"));
        assert!(matches!(plan(&[], "").unwrap().mode, Mode::Strict));
    }

    #[test]
    fn an_unknown_config_key_is_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").is_err());
    }
}
