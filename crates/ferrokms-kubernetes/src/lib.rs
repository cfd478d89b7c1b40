//! The Kubernetes KMS v2 plugin: `ferrokms kubernetes-kms-plugin` serves the KMS v2 gRPC API
//! (Status, Encrypt, Decrypt) on a Unix socket for the kube-apiserver, and keeps the API
//! server's secrets with a ferrokms key.
//!
//! The plugin is a KMS client like any other: it calls a ferrokms node over HTTP(S) with
//! SigV4-signed requests, so the key's policy, grants, quotas and audit trail apply to it,
//! and the node may be remote (the plugin runs beside each API server, the node anywhere).
//!
//! Map:
//! - `proto/kms_v2.proto`: the API as Kubernetes publishes it; `build.rs` compiles it with
//!   protox (no protoc needed).
//! - `kms`: the signed KMS calls.
//! - `envelope`: sealing under a data key from GenerateDataKey, and the KMS v2 key id (the
//!   id of the key material, so that rotation changes it).
//! - `service`: the gRPC service and how failures map to gRPC statuses.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use zeroize::Zeroizing;

pub mod envelope;
pub mod kms;
pub mod service;

/// The generated KMS v2 messages and service.
pub mod proto {
    tonic::include_proto!("v2");
}

pub use kms::{Credentials, Endpoint};

/// The most a gRPC request may be: a DEK seed's ciphertext is under a kilobyte.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {error}")]
    Socket { path: PathBuf, error: String },
    #[error("the gRPC server failed: {0}")]
    Serve(String),
}

pub struct PluginConfig {
    pub socket: PathBuf,
    /// The ferrokms key, as an id, ARN or alias.
    pub key_id: String,
    pub endpoint: Endpoint,
    pub region: String,
    pub credentials: Credentials,
    pub ca_bundle: Option<PathBuf>,
    /// Sent with every GenerateDataKey and Decrypt: key policies can require it. It must not
    /// change while data sealed with it is kept.
    pub encryption_context: BTreeMap<String, String>,
    /// Allows `http://` to another machine (`--insecure-http`).
    pub insecure_http: bool,
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` from `lookup`
    /// (the environment), or None without the first two.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: lookup("AWS_ACCESS_KEY_ID")?,
            secret_access_key: Zeroizing::new(lookup("AWS_SECRET_ACCESS_KEY")?),
            session_token: lookup("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
        })
    }

    /// A file of `export NAME=VALUE` lines, as ferrokms writes credentials; it must not be
    /// readable by group or others.
    pub fn from_file(path: &Path) -> Result<Credentials, PluginError> {
        let err = |e: String| PluginError::Config(format!("{}: {e}", path.display()));
        let key = ferrokms_server::identities::IssuedKey::read_file(path)
            .map_err(|e| PluginError::Config(e.to_string()))?
            .ok_or_else(|| err("no such file".into()))?;
        Ok(Credentials {
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
            session_token: None,
        })
    }
}

/// The socket this process serves, by its inode: removed at exit only if still this one.
struct BoundSocket {
    path: PathBuf,
    id: (u64, u64),
}

impl BoundSocket {
    fn remove_if_ours(&self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket: made mode 600 in a private directory and only then moved into place,
/// so that no one else can connect in between. A socket left by an earlier run is replaced,
/// any other file is not.
fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), PluginError> {
    let fail = |error: String| PluginError::Socket {
        path: path.to_owned(),
        error,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {}
        Ok(_) => return Err(fail("exists and is not a socket; not replacing it".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let private = parent.join(format!(".ferrokms-kms-plugin-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| fail(format!("making {}: {e}", private.display())))?;
    let staged = private.join("socket");
    let bound = UnixListener::bind(&staged)
        .map_err(|e| e.to_string())
        .and_then(|listener| {
            // Only the API server's user (the plugin's own) may connect.
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
                .and_then(|()| std::fs::rename(&staged, path))
                .map_err(|e| e.to_string())?;
            Ok(listener)
        });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    let listener = bound.map_err(fail)?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
    Ok((
        listener,
        BoundSocket {
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        },
    ))
}

/// Serves the plugin until `shutdown` resolves; the socket is removed at the end.
pub async fn serve(
    config: PluginConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), PluginError> {
    let client = kms::KmsClient::new(
        config.endpoint.clone(),
        config.region,
        config.credentials,
        config.ca_bundle.as_deref(),
    )
    .map_err(PluginError::Config)?;
    if config.endpoint.is_plain_beyond_loopback() && !config.insecure_http {
        return Err(PluginError::Config(
            "the endpoint is plain http:// to another machine: decrypted data keys would cross the network in the clear; use https://, or --insecure-http to accept that".into(),
        ));
    }
    let envelope =
        envelope::Envelope::new(client, config.key_id.clone(), config.encryption_context);
    let (listener, bound) = bind(&config.socket)?;
    tracing::info!(socket = %config.socket.display(), key = %config.key_id, "KMS v2 plugin listening");
    let service = proto::key_management_service_server::KeyManagementServiceServer::new(
        service::PluginService::new(envelope),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    bound.remove_if_ours();
    served.map_err(|e| PluginError::Serve(e.to_string()))
}
