//! Faults of a cluster on PostgreSQL, bounded in time and on loopback: a node killed under
//! load while its clients move to another node, and the database stopped and started again
//! under load. Nothing acknowledged may be lost, and nodes must recover by themselves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;

use crate::harness::{code, ferrokms_command, Server};

/// What a client was told succeeded: a key, and a ciphertext under it with its plaintext.
#[derive(Clone)]
struct Acknowledged {
    key: String,
    ciphertext: Blob,
    plaintext: Vec<u8>,
}

/// CreateKey then Encrypt, on the first node that answers.
async fn create_and_encrypt(nodes: &[Client], n: usize) -> Option<Acknowledged> {
    for client in nodes {
        let Ok(made) = client.create_key().send().await else {
            continue;
        };
        let key = made.key_metadata()?.key_id().to_owned();
        let plaintext = format!("message {n}").into_bytes();
        for client in nodes {
            if let Ok(out) = crate::encrypt(client, &key, plaintext.clone()).await {
                return Some(Acknowledged {
                    key,
                    ciphertext: out.ciphertext_blob()?.clone(),
                    plaintext,
                });
            }
        }
        return None;
    }
    None
}

async fn all_there(client: &Client, acknowledged: &[Acknowledged]) {
    for a in acknowledged {
        client.describe_key().key_id(&a.key).send().await.unwrap();
        let out = crate::decrypt(client, a.ciphertext.clone()).await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), a.plaintext.as_slice());
    }
}

#[tokio::test]
async fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let a = Server::start_in(&temp.path().join("a"), &[]);
    let b = a.another_node(&temp.path().join("b"), &[]);
    let nodes = vec![a.client(), b.client()];
    let mut workers = Vec::new();
    for _ in 0..4 {
        let nodes = nodes.clone();
        workers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let until = Instant::now() + Duration::from_secs(3);
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                acknowledged.extend(create_and_encrypt(&nodes, n).await);
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.kill();
    let mut acknowledged = Vec::new();
    for w in workers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() > 20, "the load ran on both nodes");
    all_there(&b.client(), &acknowledged).await;
    b.stop();
    let out = ferrokms_command(&temp.path().join("b"))
        .args(["audit", "verify", "--data-dir"])
        .arg(temp.path().join("b"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A PostgreSQL server of the test's own, so that stopping it disturbs no other test.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

fn pg_bin(tool: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed");
    let mut dirs: Vec<PathBuf> = versions.filter_map(|v| v.ok().map(|v| v.path())).collect();
    dirs.sort();
    dirs.last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(tool)
}

/// PostgreSQL refuses to run as root; the `postgres` account of the package runs it.
fn as_postgres(tool: &str, args: &[&str]) -> std::process::Output {
    let bin = pg_bin(tool);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    command.args(args).output().expect("PostgreSQL tool runs")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    fn start(parent: &Path) -> Self {
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(parent)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let out = as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let pg = PrivatePostgres { dir, port };
        pg.up();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.dir.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(out.status.success(), "{out:?}");
    }

    /// Stops at once, as a crash would: no checkpoint, clients cut off.
    fn down(&self) {
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

#[tokio::test]
async fn the_database_going_away_fails_requests_fast_and_nodes_reconnect() {
    let temp = tempfile::tempdir().unwrap();
    let pg = PrivatePostgres::start(temp.path());
    let url = pg.url();
    let dir = temp.path().join("node");
    let node = Server::start_with_args(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--store",
            &url,
        ],
        &dir,
    );
    let client = node.client();
    let mut acknowledged = Vec::new();
    for n in 0..10 {
        acknowledged.extend(create_and_encrypt(std::slice::from_ref(&client), n).await);
    }
    assert_eq!(acknowledged.len(), 10);

    pg.down();
    for _ in 0..3 {
        let started = Instant::now();
        let err = client.create_key().send().await.unwrap_err();
        assert_eq!(code(&err), "KMSInternalException");
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert_eq!(status, Some(500), "a retryable server error");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "failed fast: {:?}",
            started.elapsed()
        );
    }

    pg.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        if let Some(a) = create_and_encrypt(std::slice::from_ref(&client), 99).await {
            break a;
        }
        assert!(Instant::now() < deadline, "the node did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    acknowledged.push(recovered);
    all_there(&client, &acknowledged).await;
    node.stop();
}
