//! Starts the real `ferrokms` binary on an ephemeral port and talks to it: with the
//! `aws-sdk-kms` client, or with raw HTTP requests signed by `aws-sigv4`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::Client;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";

/// The PostgreSQL server of the test environment.
fn postgres_server() -> String {
    std::env::var("FERROKMS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn psql(sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([&format!("{}/postgres", postgres_server()), "-tA", "-c", sql])
        .output()
        .expect("psql runs")
}

/// Databases of an earlier run of this suite are dropped before the first is made.
fn create_database(name: &str) -> String {
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(|| {
        let old = psql("SELECT datname FROM pg_database WHERE datname LIKE 'ferrokms_e2e_%'");
        for db in String::from_utf8_lossy(&old.stdout).lines() {
            psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    });
    let exists = psql(&format!(
        "SELECT 1 FROM pg_database WHERE datname = '{name}'"
    ));
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        let out = psql(&format!("CREATE DATABASE {name}"));
        assert!(out.status.success(), "{out:?}");
    }
    format!("{}/{name}", postgres_server())
}

fn database_name(data_dir: &Path) -> String {
    let hash = data_dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
    format!("ferrokms_e2e_{hash:016x}")
}

/// The database that stands for a data directory, so that a restart finds its state.
pub fn database_of(data_dir: &Path) -> String {
    create_database(&database_name(data_dir))
}

/// Copies a stopped service's data directory, and in the PostgreSQL suite its database.
pub fn copy_service(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("data dir");
    for f in std::fs::read_dir(from).expect("data dir") {
        let f = f.expect("entry");
        std::fs::copy(f.path(), to.join(f.file_name())).expect("copy");
    }
    if crate::POSTGRES {
        database_of(from);
        let out = psql(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            database_name(to),
            database_name(from)
        ));
        assert!(out.status.success(), "{out:?}");
    }
}

/// Runs SQL on a service's store: its `ferrokms.db`, or in the PostgreSQL suite its database.
pub fn store_sql(data_dir: &Path, sql: &str) {
    let out = if crate::POSTGRES {
        Command::new("psql")
            .args([&database_of(data_dir), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs")
    } else {
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            ])
            .arg(data_dir.join("ferrokms.db"))
            .arg(sql)
            .output()
            .expect("python3 runs")
    };
    assert!(out.status.success(), "{out:?}");
}

pub fn fresh_database() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    database_of(dir.path())
}

/// The `ferrokms` command for a data directory (with its database in the PostgreSQL suite).
pub fn ferrokms_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferrokms"));
    if crate::POSTGRES {
        command.env("FERROKMS_STORE", database_of(data_dir));
    }
    command
}

/// An SDK client of the service at `endpoint`, without retries (a test sees every answer).
pub fn client_at(endpoint: &str, region: &str, access_key: &str, secret: &str) -> Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(access_key, secret, None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

pub struct Server {
    child: Child,
    pub endpoint: String,
    pub addr: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub data_dir: PathBuf,
    /// The data directory the server said it uses.
    pub printed_data_dir: String,
    /// The root key the server said it uses.
    pub root_key: String,
    /// The banner's `cryptography:` line: the module and its self-tests.
    pub cryptography: String,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A strict-mode server on a fresh data directory.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut s = Server::start_in(temp.path(), &[]);
        s._temp = Some(temp);
        s
    }

    /// A server on `data_dir` with extra `serve` arguments.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        let dir = data_dir.to_str().expect("utf-8 path");
        if !extra.contains(&"--ephemeral") {
            args.extend(["--data-dir", dir]);
        }
        args.extend(extra);
        Server::start_with_args(&args, data_dir)
    }

    /// A server started with exactly `args`; `data_dir` is where the test expects its data.
    /// In the PostgreSQL suite its state goes to the database of `data_dir`.
    pub fn start_with_args(args: &[&str], data_dir: &Path) -> Server {
        Server::start_logging(args, data_dir, None)
    }

    /// As `start_with_args`; with `log`, the server logs at debug level into that file.
    pub fn start_logging(args: &[&str], data_dir: &Path, log: Option<&Path>) -> Server {
        Server::start_logging_with(args, data_dir, log, &[])
    }

    /// As `start_logging`, with more environment variables for the server.
    pub fn start_logging_with(
        args: &[&str],
        data_dir: &Path,
        log: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrokms"));
        command.args(args);
        command.envs(env.iter().copied());
        match log {
            Some(file) => {
                command
                    .env("FERROKMS_LOG", "debug")
                    .stderr(std::fs::File::create(file).expect("log file"));
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        // Request rates are AWS's outside --dev; tests that are not about them go unthrottled.
        if args.first() == Some(&"serve") && !args.contains(&"--quotas") {
            command.args(["--quotas", "off"]);
        }
        if crate::POSTGRES && !args.contains(&"--store") {
            let url = if args.contains(&"--ephemeral") {
                fresh_database()
            } else {
                database_of(data_dir)
            };
            command.args(["--store", &url]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ferrokms");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut ak, mut sk, mut printed) = (None, None, None, String::new());
        let mut root_key = String::new();
        let mut cryptography = String::new();
        let mut scheme = "http";
        for line in lines.by_ref() {
            let line = line.expect("read banner");
            if let Some(a) = line.strip_prefix("ferrokms listening on http://") {
                addr = Some(a.to_owned());
            }
            if let Some(a) = line.strip_prefix("ferrokms listening on https://") {
                addr = Some(a.to_owned());
                scheme = "https";
            }
            if let Some(v) = line.strip_prefix("data directory: ") {
                printed = v
                    .trim_end_matches(" (ephemeral: removed at exit)")
                    .to_owned();
            }
            if let Some(v) = line.strip_prefix("root key: ") {
                root_key = v.to_owned();
            }
            if line.starts_with("cryptography: ") {
                cryptography = line.clone();
            }
            if let Some(v) = line.strip_prefix("export AWS_ACCESS_KEY_ID=") {
                ak = Some(v.split_whitespace().next().unwrap_or_default().to_owned());
            }
            if let Some(v) = line.strip_prefix("export AWS_SECRET_ACCESS_KEY=") {
                sk = Some(v.to_owned());
            }
            // Later starts name the file instead of showing the secret again.
            if let Some(v) = line.strip_prefix("admin credentials in ") {
                let file = v.split(" (").next().unwrap_or_default();
                let text = std::fs::read_to_string(file).expect("admin credentials file");
                for l in text.lines() {
                    if let Some(v) = l.strip_prefix("export AWS_ACCESS_KEY_ID=") {
                        ak = Some(v.to_owned());
                    }
                    if let Some(v) = l.strip_prefix("export AWS_SECRET_ACCESS_KEY=") {
                        sk = Some(v.to_owned());
                    }
                }
            }
            if line.starts_with("try: ") {
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let addr = addr.expect("server printed its address");
        Server {
            child,
            endpoint: format!("{scheme}://{addr}"),
            addr,
            access_key_id: ak.unwrap_or_else(|| "test".into()),
            secret_access_key: sk.unwrap_or_else(|| "test".into()),
            data_dir: data_dir.to_owned(),
            printed_data_dir: printed,
            root_key,
            cryptography,
            _temp: None,
        }
    }

    /// Another node of this one's cluster: its own data directory `dir` with copies of the
    /// root key and admin credentials, and this node's database.
    pub fn another_node(&self, dir: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(dir).expect("data dir");
        for file in ["root-key", "admin-credentials"] {
            let from = self.data_dir.join(file);
            if from.exists() {
                std::fs::copy(&from, dir.join(file)).expect("copy to the new node");
            }
        }
        let url = database_of(&self.data_dir);
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().expect("utf-8 path"),
            "--store",
            &url,
        ];
        args.extend(extra);
        Server::start_with_args(&args, dir)
    }

    pub fn client(&self) -> Client {
        self.client_in(REGION)
    }

    pub fn client_in(&self, region: &str) -> Client {
        self.client_with(region, &self.access_key_id, &self.secret_access_key)
    }

    pub fn client_with(&self, region: &str, access_key: &str, secret: &str) -> Client {
        client_at(&self.endpoint, region, access_key, secret)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server the way an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Kills the server with no chance to clean up, like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a request signed with the server's credentials for `service`, at `time`.
    pub fn signed(
        &self,
        service: &str,
        target: Option<&str>,
        body: &[u8],
        time: SystemTime,
    ) -> RawResponse {
        self.signed_with(
            &self.access_key_id,
            &self.secret_access_key,
            service,
            target,
            body,
            time,
        )
    }

    pub fn signed_with(
        &self,
        access_key: &str,
        secret: &str,
        service: &str,
        target: Option<&str>,
        body: &[u8],
        time: SystemTime,
    ) -> RawResponse {
        let headers = self.signed_headers(access_key, secret, service, target, body, time);
        raw_post(&self.addr, &headers, body)
    }

    /// The headers of a POST / signed by `aws-sigv4` for `body`.
    pub fn signed_headers(
        &self,
        access_key: &str,
        secret: &str,
        service: &str,
        target: Option<&str>,
        body: &[u8],
        time: SystemTime,
    ) -> Vec<(String, String)> {
        let mut headers = vec![
            ("host".to_owned(), self.addr.clone()),
            (
                "content-type".to_owned(),
                if service == "sts" {
                    "application/x-www-form-urlencoded".to_owned()
                } else {
                    "application/x-amz-json-1.1".to_owned()
                },
            ),
        ];
        if let Some(t) = target {
            headers.push(("x-amz-target".to_owned(), t.to_owned()));
        }
        let identity = Credentials::new(access_key, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("{}/", self.endpoint),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        for (k, v) in instructions.headers() {
            headers.push((k.to_owned(), v.to_owned()));
        }
        headers
    }

    /// Sends a KMS operation signed now.
    pub fn kms(&self, operation: &str, body: &str) -> RawResponse {
        self.signed(
            "kms",
            Some(&format!("TrentService.{operation}")),
            body.as_bytes(),
            SystemTime::now(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    pub fn message(&self) -> Option<String> {
        self.json()["message"].as_str().map(str::to_owned)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 POST to `/` over a fresh connection, read to the end.
pub fn raw_post(addr: &str, headers: &[(String, String)], body: &[u8]) -> RawResponse {
    raw_post_to(addr, "/", headers, body)
}

impl Server {
    /// Dev-mode debug endpoint: moves the server's clock forward.
    pub fn advance_clock_days(&self, days: i64) {
        let path = format!("/ferrokms/debug/advance-clock?seconds={}", days * 86_400);
        let r = raw_post_to(
            &self.addr,
            &path,
            &[("host".into(), self.addr.clone())],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Dev-mode debug endpoint: runs rotation and deletion now; returns (rotated, deleted).
    pub fn run_jobs(&self) -> (u64, u64) {
        let r = raw_post_to(
            &self.addr,
            "/ferrokms/debug/run-jobs",
            &[("host".into(), self.addr.clone())],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        (
            v["Rotated"].as_u64().unwrap(),
            v["Deleted"].as_u64().unwrap(),
        )
    }
}

pub fn raw_post_to(
    addr: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    raw_request(addr, "POST", path, headers, body)
}

/// One HTTP/1.1 request over a fresh connection, read to the end.
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(req.as_bytes()).expect("write");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The `__type` code of an SDK error, e.g. "NotFoundException".
pub fn code<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    aws_sdk_kms::error::ProvideErrorMetadata::code(err)
        .unwrap_or("<no code>")
        .to_owned()
}

/// The message of an SDK error.
pub fn message<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata,
{
    aws_sdk_kms::error::ProvideErrorMetadata::message(err)
        .unwrap_or_default()
        .to_owned()
}

pub const LOOKUP: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

pub fn lookup(server: &Server, body: Value) -> Value {
    let r = server.signed(
        "cloudtrail",
        Some(LOOKUP),
        body.to_string().as_bytes(),
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub fn events_named(server: &Server, name: &str) -> Vec<Value> {
    let out = lookup(
        server,
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}]}),
    );
    out["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect()
}

/// `ferrokms ARGS --data-dir DIR`, as an operator runs the tools beside a service.
pub fn ferrokms_in(data_dir: &Path, args: &[&str]) -> std::process::Output {
    ferrokms_command(data_dir)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("ferrokms runs")
}

/// A user of the service's account with the IAM policy `policy` and an access key pair.
pub fn user_with_policy(data_dir: &Path, name: &str, policy: &str) -> (String, String) {
    let admin = |args: &[&str]| {
        let out = ferrokms_command(data_dir)
            .args(["admin", "--data-dir", data_dir.to_str().expect("utf-8")])
            .args(args)
            .output()
            .expect("ferrokms admin runs");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    admin(&["create-user", "--user", name]);
    let file = data_dir.join(format!("{name}-policy.json"));
    std::fs::write(&file, policy).expect("write policy");
    admin(&[
        "put-user-policy",
        "--user",
        name,
        "--policy-name",
        "policy",
        "--policy-document",
        &format!("@{}", file.display()),
    ]);
    let text = admin(&["create-access-key", "--user", name]);
    let value = |v: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {v}=")))
            .expect("an export line")
            .to_owned()
    };
    (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"))
}

/// Every record of a service's trail, as `ferrokms audit export` writes them.
pub fn exported(data_dir: &Path) -> Vec<Value> {
    let out = ferrokms_in(data_dir, &["audit", "export"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

/// A config file in `dir` whose `/metrics` asks for `token` (kept in a file of mode 0600).
pub fn metrics_config(dir: &Path, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let token_file = dir.join("metrics-token");
    std::fs::write(&token_file, token).expect("token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let config = dir.join("ferrokms.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_bearer_token_file = {:?}\n",
            token_file.to_str().expect("utf-8")
        ),
    )
    .expect("config");
    config
}

/// `GET /metrics`, with `token` as the bearer token if given: the status and the body.
pub fn get_metrics(addr: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}
