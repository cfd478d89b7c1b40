//! The Kubernetes KMS v2 plugin (`ferrokms kubernetes-kms-plugin`) against a real server,
//! called over its Unix socket by a real gRPC client (grpcio, tests/interop/
//! kubernetes_kms_plugin.py) as the kube-apiserver calls it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{events_named, user_with_policy, Server};

fn proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ferrokms-kubernetes/proto/kms_v2.proto")
}

fn credentials_file(dir: &Path, key: &str, secret: &str, mode: u32) -> PathBuf {
    let file = dir.join("plugin-credentials");
    std::fs::write(
        &file,
        format!("export AWS_ACCESS_KEY_ID={key}\nexport AWS_SECRET_ACCESS_KEY={secret}\n"),
    )
    .expect("write credentials");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    file
}

fn plugin(server: &Server, socket: &Path, key_id: &str, credentials: &Path) -> Command {
    plugin_at(&server.endpoint, socket, key_id, credentials)
}

fn plugin_at(endpoint: &str, socket: &Path, key_id: &str, credentials: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrokms"));
    command
        .arg("kubernetes-kms-plugin")
        .arg("--socket")
        .arg(socket)
        .args(["--key-id", key_id, "--endpoint", endpoint])
        .arg("--credentials-file")
        .arg(credentials)
        .args(["--encryption-context", "cluster=e2e"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    command
}

/// The running plugin, stopped if the test fails before it does.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(child: &mut Child, socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the plugin exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The plugin's whole job with the least privilege it needs: an IAM user allowed only
/// GenerateDataKey, Encrypt and Decrypt on the one key, with the plugin's encryption
/// context.
#[tokio::test]
async fn the_kubernetes_plugin_seals_rotates_and_reports_health() {
    let server = Server::start();
    let key = server
        .client()
        .create_key()
        .description("kubernetes secrets")
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("metadata");
    let (key_id, key_arn) = (key.key_id().to_owned(), key.arn().expect("arn").to_owned());
    server
        .client()
        .create_alias()
        .alias_name("alias/kubernetes")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("CreateAlias");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"],
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:EncryptionContext:cluster": "e2e"}}
        }]
    });
    let (user_key, user_secret) =
        user_with_policy(&server.data_dir, "kube-apiserver", &policy.to_string());
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("kms.sock");

    // Credentials others may read are refused before anything is served.
    let shared = credentials_file(dir.path(), &user_key, &user_secret, 0o644);
    let refused = plugin(&server, &socket, "alias/kubernetes", &shared)
        .output()
        .expect("the plugin runs");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("readable by others"), "{said}");
    assert!(!socket.exists());

    let credentials = credentials_file(dir.path(), &user_key, &user_secret, 0o600);
    // Plain HTTP to another machine would carry data keys in the clear.
    let remote = plugin_at(
        "http://192.0.2.1:4599",
        &socket,
        "alias/kubernetes",
        &credentials,
    )
    .output()
    .expect("the plugin runs");
    assert!(!remote.status.success());
    let said = String::from_utf8_lossy(&remote.stderr);
    assert!(said.contains("plain http:// to another machine"), "{said}");
    // A file at the socket's path that is not a socket is never replaced.
    std::fs::write(&socket, "someone's file").expect("write");
    let occupied = plugin(&server, &socket, "alias/kubernetes", &credentials)
        .output()
        .expect("the plugin runs");
    assert!(!occupied.status.success());
    let said = String::from_utf8_lossy(&occupied.stderr);
    assert!(said.contains("not a socket"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&socket).expect("still there"),
        "someone's file"
    );
    std::fs::remove_file(&socket).expect("remove");
    let mut running = Running(
        plugin(&server, &socket, "alias/kubernetes", &credentials)
            .stdout(Stdio::null())
            .spawn()
            .expect("the plugin starts"),
    );
    wait_for_socket(&mut running.0, &socket);
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the API server's alone");

    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kubernetes_kms_plugin.py"))
        .env("PLUGIN_SOCKET", &socket)
        .env("PLUGIN_PROTO", proto())
        .env("KEY_ID", &key_id)
        .env("FERROKMS_ENDPOINT", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("python3 runs (pip install grpcio grpcio-tools boto3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("kubernetes kms plugin: ok"),
        "the gRPC client failed (pip install grpcio grpcio-tools boto3)\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The plugin's calls are in the trail as its user's, with the plugin's context.
    let made = events_named(&server, "GenerateDataKey");
    let by_plugin: Vec<_> = made
        .iter()
        .filter(|e| {
            e["userIdentity"]["arn"]
                .as_str()
                .is_some_and(|a| a.ends_with(":user/kube-apiserver"))
        })
        .collect();
    assert!(!by_plugin.is_empty(), "{made:?}");
    for event in &by_plugin {
        assert_eq!(
            event["requestParameters"]["encryptionContext"]["cluster"], "e2e",
            "{event}"
        );
        let agent = event["userAgent"].as_str().unwrap_or_default();
        assert!(
            agent.starts_with("ferrokms-kubernetes-kms-plugin/"),
            "{agent}"
        );
    }

    // SIGTERM: the plugin stops and takes its socket with it.
    let pid = running.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = running.0.wait().expect("the plugin exits");
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket was left behind");
    server.stop();
}
