//! External key stores end to end: `ferrokms xks-proxy` serves the XKS Proxy API over a
//! SoftHSM2 token, and a second ferrokms keeps an EXTERNAL_KEY_STORE custom key store whose
//! keys double-encrypt through it. The proxy is checked on its own with curl's SigV4 (the
//! way AWS's proxy test client does); with the proxy gone, those keys fail with AWS's errors
//! while other keys keep working.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, OriginType,
    XksProxyAuthenticationCredentialType, XksProxyConnectivityType,
};
use aws_sdk_kms::Client;

use crate::harness::{code, message, Server, REGION};
use crate::hsm::{new_token, SOFTHSM_MODULE};

const HOST: &str = "xks.ferrokms.test";
const PREFIX: &str = "/tenant-a";
const ACCESS_KEY: &str = "XKSPROXYACCESSKEY2345";
const SECRET: &str = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE";

struct Proxy {
    child: Child,
    address: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy's config file, with a token of its own, a certificate for HOST and one
/// credential; `listen` may name a port to take again after a restart.
fn proxy_config(dir: &Path, listen: &str) -> PathBuf {
    let config = dir.join("proxy.toml");
    if !config.exists() {
        let pin = new_token("xks-ekm", dir);
        let made = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).unwrap();
        std::fs::write(dir.join("proxy-cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("proxy-key.pem"), made.signing_key.serialize_pem()).unwrap();
        std::fs::write(
            dir.join("proxy-base.toml"),
            format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"\nuri_path_prefix = \"{PREFIX}\"\n\
                 module = \"{SOFTHSM_MODULE}\"\ntoken_label = \"xks-ekm\"\npin_file = \"{}\"\n\
                 [[credentials]]\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET}\"\n",
                dir.join("proxy-cert.pem").display(),
                dir.join("proxy-key.pem").display(),
                pin.display()
            ),
        )
        .unwrap();
    }
    let base = std::fs::read_to_string(dir.join("proxy-base.toml")).unwrap();
    std::fs::write(&config, format!("listen = \"{listen}\"\n{base}")).unwrap();
    config
}

fn start_proxy(config: &Path) -> Proxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["xks-proxy", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the proxy");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a banner").expect("read banner");
    std::thread::spawn(move || for _ in lines {});
    let rest = line
        .strip_prefix("ferrokms xks-proxy listening on https://")
        .unwrap_or_else(|| panic!("banner: {line}"));
    let (address, path) = rest.split_once('/').expect("address/path");
    assert_eq!(format!("/{path}"), format!("{PREFIX}/kms/xks/v1"));
    Proxy {
        child,
        address: address.to_owned(),
    }
}

/// A proxy request as AWS's XKS proxy test client makes it: curl signing with SigV4.
fn curl(
    dir: &Path,
    proxy: &Proxy,
    method: &str,
    path: &str,
    body: &str,
    secret: &str,
) -> (u16, String) {
    let port = proxy.address.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg("--cacert")
        .arg(dir.join("proxy-cert.pem"))
        .args(["--connect-to", &format!("{HOST}:443:127.0.0.1:{port}")])
        .args(["--aws-sigv4", &format!("aws:amz:{REGION}:kms-xks-proxy")])
        .args(["--user", &format!("{ACCESS_KEY}:{secret}")])
        .args(["-H", "Content-Type: application/json", "--data", body])
        .arg(format!("https://{HOST}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn credential(secret: &str) -> XksProxyAuthenticationCredentialType {
    XksProxyAuthenticationCredentialType::builder()
        .access_key_id(ACCESS_KEY)
        .raw_secret_access_key(secret)
        .build()
        .unwrap()
}

async fn create_store(
    kms: &Client,
    name: &str,
    path: &str,
    secret: &str,
) -> Result<String, String> {
    kms.create_custom_key_store()
        .custom_key_store_name(name)
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .xks_proxy_uri_path(path)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_authentication_credential(credential(secret))
        .send()
        .await
        .map(|o| o.custom_key_store_id().unwrap().to_owned())
        .map_err(|e| code(&e))
}

#[tokio::test]
async fn a_ferrokms_proxy_serves_another_ferrokms_external_key_store() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let config = proxy_config(dir, "127.0.0.1:0");
    let made = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args([
            "xks-proxy",
            "create-key",
            "--key-id",
            "ext-key-1",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let again = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args([
            "xks-proxy",
            "create-key",
            "--key-id",
            "ext-key-1",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success(), "a label is one key");
    let proxy = start_proxy(&config);

    // The proxy on its own, as the XKS proxy test client checks one.
    let health = r#"{"requestMetadata":{"kmsRequestId":"r1","kmsOperation":"KmsHealthCheck"}}"#;
    let api = format!("{PREFIX}/kms/xks/v1");
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        &format!("{api}/health"),
        health,
        SECRET,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"healthStatus\":\"ACTIVE\""), "{body}");
    let metadata = "{\"requestMetadata\":{\"awsPrincipalArn\":\"arn:aws:iam::111122223333:user/a\",\"kmsOperation\":\"CreateKey\",\"kmsRequestId\":\"r2\"}}";
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        &format!("{api}/keys/ext-key-1/metadata"),
        metadata,
        SECRET,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"keySpec\":\"AES_256\"") && body.contains("\"keyStatus\":\"ENABLED\""),
        "{body}"
    );
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        &format!("{api}/keys/no-such-key/metadata"),
        metadata,
        SECRET,
    );
    assert_eq!(
        (status, body.contains("KeyNotFoundException")),
        (404, true),
        "{body}"
    );
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        &format!("{api}/health"),
        health,
        &SECRET.replace('F', "G"),
    );
    assert_eq!(
        (status, body.contains("AuthenticationFailedException")),
        (401, true),
        "{body}"
    );
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        "/other/kms/xks/v1/health",
        health,
        SECRET,
    );
    assert_eq!(
        (status, body.contains("InvalidUriPathException")),
        (404, true),
        "{body}"
    );
    let (status, _) = curl(dir, &proxy, "GET", &format!("{api}/health"), "", SECRET);
    assert_eq!(status, 405);
    let (status, body) = curl(
        dir,
        &proxy,
        "POST",
        &format!("{api}/keys/ext-key-1/metadata"),
        "{}",
        SECRET,
    );
    assert_eq!(
        (status, body.contains("ValidationException")),
        (400, true),
        "{body}"
    );

    // A ferrokms whose external key store is that proxy.
    let service_config = dir.join("ferrokms.toml");
    std::fs::write(
        &service_config,
        format!(
            "[xks]\nca_bundle = \"{}\"\n[xks.connect_to]\n\"{HOST}\" = \"{}\"\n",
            dir.join("proxy-cert.pem").display(),
            proxy.address
        ),
    )
    .unwrap();
    let server = Server::start_in(
        &dir.join("data"),
        &["--config", service_config.to_str().unwrap()],
    );
    let kms = server.client();
    let wrong_secret = SECRET.replace('F', "G");
    assert_eq!(
        create_store(&kms, "x", &api, &wrong_secret).await,
        Err("XksProxyIncorrectAuthenticationCredentialException".into())
    );
    assert_eq!(
        create_store(&kms, "x", "/elsewhere/kms/xks/v1", SECRET).await,
        Err("XksProxyInvalidConfigurationException".into())
    );
    let store = create_store(&kms, "external", &api, SECRET).await.unwrap();
    assert_eq!(
        create_store(&kms, "again", &api, SECRET).await,
        Err("XksProxyUriInUseException".into())
    );
    let described = kms
        .describe_custom_key_stores()
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap();
    let entry = &described.custom_key_stores()[0];
    let configured = entry.xks_proxy_configuration().unwrap();
    assert_eq!(configured.access_key_id(), Some(ACCESS_KEY));
    assert_eq!(configured.uri_path(), Some(api.as_str()));
    assert!(entry.cloud_hsm_cluster_id().is_none());
    assert_eq!(
        entry.connection_state(),
        Some(&ConnectionStateType::Disconnected)
    );
    crate::connect_store(&kms, &store).await;
    assert_eq!(
        crate::store_state(&kms, &store).await,
        (ConnectionStateType::Connected, None)
    );

    let create = || {
        kms.create_key()
            .custom_key_store_id(&store)
            .origin(OriginType::ExternalKeyStore)
    };
    let err = create().xks_key_id("no-such-key").send().await.unwrap_err();
    assert_eq!(code(&err), "XksKeyNotFoundException");
    let err = create().send().await.unwrap_err();
    assert_eq!(
        code(&err),
        "UnsupportedOperationException",
        "XksKeyId is needed"
    );
    let made = create().xks_key_id("ext-key-1").send().await.unwrap();
    let meta = made.key_metadata().unwrap();
    assert_eq!(meta.origin(), Some(&OriginType::ExternalKeyStore));
    assert_eq!(meta.custom_key_store_id(), Some(store.as_str()));
    assert_eq!(
        meta.xks_key_configuration().unwrap().id(),
        Some("ext-key-1")
    );
    let key = meta.arn().unwrap().to_owned();
    let err = create().xks_key_id("ext-key-1").send().await.unwrap_err();
    assert_eq!(code(&err), "XksKeyAlreadyInUseException");
    let (plain_key, _) = crate::new_key(&kms).await;

    let plaintext = "kept under two keys";
    let blob = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(plaintext))
        .encryption_context("purpose", "xks")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    // The outer layer (version 3, IV, tag) around a whole ferrokms blob of the key's own
    // material (110 bytes more than the plaintext).
    assert_eq!(blob.as_ref()[0], 3);
    assert_eq!(
        blob.as_ref().len(),
        50 + 12 + 16 + 1 + plaintext.len() + 110
    );
    let decrypt = |blob: Blob| {
        kms.decrypt()
            .ciphertext_blob(blob)
            .encryption_context("purpose", "xks")
            .send()
    };
    let opened = decrypt(blob.clone()).await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), plaintext.as_bytes());
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "the context is bound"
    );
    let data_key = kms
        .generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let back = kms
        .decrypt()
        .ciphertext_blob(data_key.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext(), data_key.plaintext());
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("purpose", "xks")
        .destination_key_id(&plain_key)
        .send()
        .await
        .unwrap();
    let other = crate::encrypt(&kms, &plain_key, "not external")
        .await
        .unwrap();
    let other = other.ciphertext_blob().unwrap().clone();

    // Without the proxy the external keys fail as AWS's do; the others keep working.
    drop(proxy);
    let err = decrypt(blob.clone()).await.unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    assert!(
        message(&err).contains("cannot communicate with the external key store proxy"),
        "{}",
        message(&err)
    );
    let err = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    let still = crate::decrypt(&kms, other.clone()).await.unwrap();
    assert_eq!(still.plaintext().unwrap().as_ref(), b"not external");
    let still = crate::decrypt(&kms, moved.ciphertext_blob().unwrap().clone()).await;
    assert_eq!(
        still.unwrap().plaintext().unwrap().as_ref(),
        plaintext.as_bytes()
    );
    // Connecting while the proxy is gone fails with the code AWS gives.
    crate::disconnect_store(&kms, &store).await.unwrap();
    let err = decrypt(blob.clone()).await.unwrap_err();
    assert_eq!(message(&err), format!("{key} is unavailable."));
    crate::connect_store(&kms, &store).await;
    assert_eq!(
        crate::store_state(&kms, &store).await,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::XksProxyNotReachable)
        )
    );

    // The proxy back on its port: the same ciphertext opens again.
    let _proxy = start_proxy(&proxy_config(dir, &server_address(&service_config)));
    crate::disconnect_store(&kms, &store).await.unwrap();
    crate::connect_store(&kms, &store).await;
    assert_eq!(
        crate::store_state(&kms, &store).await,
        (ConnectionStateType::Connected, None)
    );
    let opened = decrypt(blob).await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), plaintext.as_bytes());
}

/// The proxy address the service's config file connects to.
fn server_address(service_config: &Path) -> String {
    let text = std::fs::read_to_string(service_config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("\"{HOST}\"")))
        .unwrap();
    line.split('"').nth(3).unwrap().to_owned()
}
