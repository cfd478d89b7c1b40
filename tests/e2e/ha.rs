//! High availability on the reference deployment of `tests/ha/cluster.sh` (etcd, two
//! PostgreSQL servers under Patroni with synchronous replication, HAProxy in front): the
//! primary killed under load by `kill -9`, the standby promoted, the load going on. Nothing
//! acknowledged may be lost, the audit chain must verify across the failover, and the old
//! primary, back as a standby, must refuse writes. Loopback only; the test prints its
//! figures (requests acknowledged, lost, the window of failed requests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;
use aws_sdk_kms::Client;

use crate::harness::{ferrokms_command, Server};

/// The reference deployment, stopped when dropped.
struct Cluster {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ha/cluster.sh")
}

fn cluster(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run tests/ha/cluster.sh")
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        // Made first, so that whatever started is stopped however the test ends.
        let mut guard = Cluster {
            dir: dir.to_owned(),
            url: String::new(),
        };
        let out = cluster(&["start", dir.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "the HA cluster did not start (apt-get install patroni etcd-server haproxy): {out:?}"
        );
        let base = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let created = Command::new("psql")
            .args([&base, "-c", "CREATE DATABASE ferrokms"])
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        guard.url = format!(
            "{}/ferrokms",
            base.strip_suffix("/postgres")
                .expect("the script prints a database URL")
        );
        guard
    }

    fn primary(&self) -> Option<String> {
        let out = cluster(&["primary", self.dir.to_str().unwrap()]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn kill(&self, node: &str) {
        assert!(cluster(&["kill", self.dir.to_str().unwrap(), node])
            .status
            .success());
    }

    fn revive(&self, node: &str) {
        assert!(cluster(&["revive", self.dir.to_str().unwrap(), node])
            .status
            .success());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = cluster(&["stop", self.dir.to_str().unwrap()]);
    }
}

/// What the load was told succeeded.
#[derive(Default)]
struct Acknowledged {
    keys: Vec<String>,
    ciphertexts: Vec<(Blob, Vec<u8>)>,
    grants: Vec<(String, String)>,
    policies: Vec<(String, String)>,
    deletions: Vec<String>,
    /// When requests failed, since the load began.
    failures: Vec<Duration>,
    requests: usize,
}

fn policy_naming(account: &str, sid: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

/// One worker's mixed load on both nodes in turn, until `until`: Encrypt and CreateGrant on
/// the worker's own key; CreateKey, then PutKeyPolicy (once, so that a lost one shows), then
/// ScheduleKeyDeletion of a new key each round.
async fn load(nodes: Vec<Client>, worker: usize, start: Instant, until: Instant) -> Acknowledged {
    let mut ack = Acknowledged::default();
    let own = loop {
        if let Ok(out) = nodes[worker % nodes.len()].create_key().send().await {
            let id = out.key_metadata().unwrap().key_id().to_owned();
            ack.keys.push(id.clone());
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no key could be made"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut doomed: Option<String> = None;
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let kms = &nodes[n % nodes.len()];
        ack.requests += 1;
        let ok = match (n % 5, doomed.clone()) {
            (0, _) | (_, None) => match kms.create_key().send().await {
                Ok(out) => {
                    let id = out.key_metadata().unwrap().key_id().to_owned();
                    ack.keys.push(id.clone());
                    doomed = Some(id);
                    true
                }
                Err(_) => false,
            },
            (1, _) => {
                let plaintext = format!("worker {worker} message {n}").into_bytes();
                match crate::encrypt(kms, &own, plaintext.clone()).await {
                    Ok(out) => {
                        ack.ciphertexts
                            .push((out.ciphertext_blob().unwrap().clone(), plaintext));
                        true
                    }
                    Err(_) => false,
                }
            }
            (2, _) => {
                let grantee = format!("arn:aws:iam::111122223333:role/worker-{worker}-{n}");
                match kms
                    .create_grant()
                    .key_id(&own)
                    .grantee_principal(&grantee)
                    .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
                    .send()
                    .await
                {
                    Ok(out) => {
                        ack.grants
                            .push((own.clone(), out.grant_id().unwrap().to_owned()));
                        true
                    }
                    Err(_) => false,
                }
            }
            (3, Some(key)) => {
                let document = policy_naming("111122223333", &format!("w{worker}n{n}"));
                match kms
                    .put_key_policy()
                    .key_id(&key)
                    .policy(&document)
                    .send()
                    .await
                {
                    Ok(_) => {
                        ack.policies.push((key, document));
                        true
                    }
                    Err(_) => false,
                }
            }
            (_, Some(key)) => {
                match kms
                    .schedule_key_deletion()
                    .key_id(&key)
                    .pending_window_in_days(7)
                    .send()
                    .await
                {
                    Ok(_) => {
                        ack.deletions.push(key);
                        doomed = None;
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        if !ok {
            ack.failures.push(start.elapsed());
        }
    }
    ack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_primary_killed_under_load_loses_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&temp.path().join("ha"));
    let first = cluster.primary().expect("a primary");
    let a_dir = temp.path().join("a");
    let a = Server::start_in(&a_dir, &["--store", &cluster.url]);
    let b_dir = temp.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    for file in ["root-key", "admin-credentials"] {
        std::fs::copy(a_dir.join(file), b_dir.join(file)).unwrap();
    }
    let b = Server::start_in(&b_dir, &["--store", &cluster.url]);
    let nodes = vec![a.client(), b.client()];

    let start = Instant::now();
    let until = start + Duration::from_secs(24);
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(load(nodes.clone(), w, start, until)))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = start.elapsed();
    cluster.kill(&first);
    // Patroni promotes the synchronous standby.
    let promoted = loop {
        if cluster.primary().is_some_and(|p| p != first) {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no promotion");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut all = Acknowledged::default();
    for w in workers {
        let ack = w.await.unwrap();
        all.keys.extend(ack.keys);
        all.ciphertexts.extend(ack.ciphertexts);
        all.grants.extend(ack.grants);
        all.policies.extend(ack.policies);
        all.deletions.extend(ack.deletions);
        all.failures.extend(ack.failures);
        all.requests += ack.requests;
    }
    let succeeded_after = all.failures.iter().max().copied().unwrap_or(killed_at);
    assert!(
        succeeded_after + Duration::from_secs(3) < until - start,
        "the load kept failing to the end (last failure at {succeeded_after:?})"
    );

    // The old primary comes back as a standby and refuses writes; writes go to the new one.
    cluster.revive(&first);

    // Everything acknowledged is there, read through either node.
    let kms = &nodes[1];
    let mut missing: Vec<String> = Vec::new();
    for key in &all.keys {
        if kms.describe_key().key_id(key).send().await.is_err() {
            missing.push(format!("key {key}"));
        }
    }
    for (blob, plaintext) in &all.ciphertexts {
        match crate::decrypt(kms, blob.clone()).await {
            Ok(out) if out.plaintext().map(|p| p.as_ref()) == Some(plaintext.as_slice()) => {}
            other => missing.push(format!("ciphertext: {other:?}")),
        }
    }
    let mut grants_of = std::collections::BTreeMap::new();
    for (key, grant) in &all.grants {
        if !grants_of.contains_key(key) {
            let mut listed = Vec::new();
            let mut marker = None;
            loop {
                let page = kms
                    .list_grants()
                    .key_id(key)
                    .set_marker(marker)
                    .send()
                    .await
                    .unwrap();
                listed.extend(
                    page.grants()
                        .iter()
                        .filter_map(|g| g.grant_id().map(str::to_owned)),
                );
                if !page.truncated() {
                    break;
                }
                marker = page.next_marker().map(str::to_owned);
            }
            grants_of.insert(key.clone(), listed);
        }
        if !grants_of[key].contains(grant) {
            missing.push(format!("grant {grant}"));
        }
    }
    for key in &all.deletions {
        let meta = kms.describe_key().key_id(key).send().await.unwrap();
        if meta.key_metadata().unwrap().key_state() != Some(&KeyState::PendingDeletion) {
            missing.push(format!("deletion of {key}"));
        }
    }
    // The last policy acknowledged for a key is its policy (each worker writes its own key).
    let mut last_policy = std::collections::BTreeMap::new();
    for (key, document) in &all.policies {
        last_policy.insert(key.clone(), document.clone());
    }
    for (key, document) in &last_policy {
        let got = kms.get_key_policy().key_id(key).send().await.unwrap();
        if got.policy() != Some(document.as_str()) {
            missing.push(format!("policy of {key}"));
        }
    }
    // Each acknowledged CreateKey and Encrypt has its audit record: records are durable
    // before the answer, on both database servers.
    let events = Command::new("psql")
        .args([
            &cluster.url,
            "-Atc",
            "SELECT event FROM audit_events WHERE event_name IN ('CreateKey', 'Encrypt')",
        ])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&events.stdout);
    let (mut created, mut encrypted) = (std::collections::BTreeSet::new(), 0);
    for line in events.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e.get("errorCode").is_some() {
            continue;
        }
        match e["eventName"].as_str() {
            // The key a CreateKey made is its record's resource.
            Some("CreateKey") => {
                for r in e["resources"].as_array().into_iter().flatten() {
                    if let Some((_, id)) = r["ARN"].as_str().and_then(|a| a.split_once(":key/")) {
                        created.insert(id.to_owned());
                    }
                }
            }
            _ => encrypted += 1,
        }
    }
    for key in &all.keys {
        if !created.contains(key) {
            missing.push(format!("the audit record of CreateKey {key}"));
        }
    }
    if encrypted < all.ciphertexts.len() {
        missing.push(format!(
            "audit records of Encrypt: {encrypted} for {} acknowledged",
            all.ciphertexts.len()
        ));
    }
    let lost = missing.len();
    let writes = all.keys.len() + all.grants.len() + all.policies.len() + all.deletions.len();
    let acknowledged = writes + all.ciphertexts.len();
    let window = match (all.failures.iter().min(), all.failures.iter().max()) {
        (Some(first), Some(last)) => format!(
            "{:.1} s ({first:.1?} to {last:.1?})",
            (*last - *first).as_secs_f64()
        ),
        _ => "none".to_owned(),
    };
    println!(
        "HA failover: {} requests; acknowledged: {writes} writes (keys {}, grants {}, policies {}, deletions {}) and {} ciphertexts, each with its audit record; lost: {lost}; primary killed at {killed_at:.1?}, standby promoted at {promoted:.1?}; {} failed requests, window {window}",
        all.requests,
        all.keys.len(),
        all.grants.len(),
        all.policies.len(),
        all.deletions.len(),
        all.ciphertexts.len(),
        all.failures.len(),
    );
    assert!(missing.is_empty(), "lost: {missing:#?}");
    assert!(
        !all.failures.is_empty(),
        "the kill did not hit the serving primary (nothing failed)"
    );
    assert!(acknowledged > 40, "the load ran: {acknowledged}");

    // No split brain: the old primary, back, is a standby that refuses writes.
    let rejoined = Instant::now();
    let port = if first == "pg1" { "5433" } else { "5434" };
    loop {
        let out = Command::new("psql")
            .args([
                &format!("postgres://postgres@127.0.0.1:{port}/ferrokms"),
                "-Atc",
                "SELECT pg_is_in_recovery()",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "t" {
            break;
        }
        assert!(rejoined.elapsed() < Duration::from_secs(60), "{out:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let write = Command::new("psql")
        .args([
            &format!("postgres://postgres@127.0.0.1:{port}/ferrokms"),
            "-c",
            "CREATE TABLE split_brain (x int)",
        ])
        .output()
        .unwrap();
    assert!(!write.status.success());
    assert!(String::from_utf8_lossy(&write.stderr).contains("read-only"));

    drop(a);
    drop(b);
    // The audit chain spans the failover with no gap and no fork.
    let out = ferrokms_command(&b_dir)
        .env("FERROKMS_STORE", &cluster.url)
        .args(["audit", "verify", "--data-dir"])
        .arg(&b_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A free port on loopback, for a node that must come back where it was.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node on `port` and the shared database of `first_dir`, draining a second on SIGTERM.
fn node(dir: &Path, port: u16, database: &str) -> Server {
    let listen = format!("127.0.0.1:{port}");
    Server::start_with_args(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            dir.to_str().unwrap(),
            "--store",
            database,
            "--drain-seconds",
            "1",
        ],
        dir,
    )
}

/// Waits until the node on `port` answers its health check.
async fn healthy(port: u16) {
    let since = Instant::now();
    loop {
        let ok = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/ferrokms/health")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "node on {port} never healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// HAProxy in front of the nodes, checking `GET /ferrokms/health`, and retrying nothing
/// (so that only draining keeps requests off a stopping node); stopped when dropped.
struct Balancer {
    pid_file: PathBuf,
}

impl Balancer {
    fn start(dir: &Path, port: u16, nodes: &[u16]) -> Balancer {
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server n{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 500\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  retries 0\nlisten kms\n  bind 127.0.0.1:{port}\n  option httpchk GET /ferrokms/health\n  http-check expect status 200\n  default-server inter 200ms fall 1 rise 2\n{servers}"
        );
        let file = dir.join("haproxy-kms.cfg");
        std::fs::write(&file, config).unwrap();
        let pid_file = dir.join("haproxy-kms.pid");
        let status = Command::new("haproxy")
            .args(["-D", "-f"])
            .arg(&file)
            .arg("-p")
            .arg(&pid_file)
            .status()
            .expect("haproxy (apt-get install haproxy)");
        assert!(status.success());
        Balancer { pid_file }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Both nodes restarted one after the other behind a load balancer, under load: each drains
/// (its health check fails while it still serves), finishes what it has, exits, and comes
/// back; no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_a_load_balancer_fails_no_request() {
    let temp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (temp.path().join("a"), temp.path().join("b"));
    let database = crate::harness::database_of(&a_dir);
    let (pa, pb, ph) = (free_port(), free_port(), free_port());
    let a = node(&a_dir, pa, &database);
    std::fs::create_dir_all(&b_dir).unwrap();
    for file in ["root-key", "admin-credentials"] {
        std::fs::copy(a_dir.join(file), b_dir.join(file)).unwrap();
    }
    let b = node(&b_dir, pb, &database);
    let _balancer = Balancer::start(temp.path(), ph, &[pa, pb]);
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            &a.access_key_id,
            &a.secret_access_key,
            None,
            None,
            "test",
        ))
        .endpoint_url(format!("http://127.0.0.1:{ph}"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    let kms = Client::from_conf(config);
    // Both nodes up behind the balancer.
    let ready = Instant::now();
    while kms.list_keys().send().await.is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(10),
            "the balancer never routed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (key, _) = crate::new_key(&kms).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (kms, key, stop) = (kms.clone(), key.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0usize, Vec::new());
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let result = if n % 4 == 0 {
                        kms.create_key()
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("{e:?}"))
                    } else {
                        let text = format!("worker {w} request {n}");
                        match crate::encrypt(&kms, &key, text.clone()).await {
                            Ok(out) => crate::decrypt(&kms, out.ciphertext_blob().unwrap().clone())
                                .await
                                .map(|_| ())
                                .map_err(|e| format!("{e:?}")),
                            Err(e) => Err(format!("{e:?}")),
                        }
                    };
                    match result {
                        Ok(()) => ok += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.stop();
    let a = node(&a_dir, pa, &database);
    // Back in the balancer (two good checks 200 ms apart) before the other one goes.
    healthy(pa).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    b.stop();
    let b = node(&b_dir, pb, &database);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    println!(
        "rolling restart: {ok} requests succeeded, {} failed, over {:.1?}",
        failed.len(),
        started.elapsed()
    );
    assert!(ok > 100, "the load ran: {ok}");
    assert!(failed.is_empty(), "{failed:#?}");
    drop((a, b));
}
