//! A small load generator: concurrent Encrypt calls against a running ferrokms, printing
//! requests per second. The load benchmark proper belongs to the performance work; this is
//! the figure behind "group commit keeps auditing cheap".
//!
//! ```sh
//! cargo run --release -- serve --dev --ephemeral --listen 127.0.0.1:4599 &
//! cargo run --release --example load -- http://127.0.0.1:4599 16 4000
//! ```

use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4599".into());
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "load"))
        .endpoint_url(&endpoint)
        .build();
    let kms = aws_sdk_kms::Client::from_conf(config);
    let key = match kms.create_key().send().await {
        Ok(out) => out
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .unwrap_or_default(),
        Err(e) => {
            eprintln!("cannot reach {endpoint}: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (kms, key) = (kms.clone(), key.clone());
        let share = total / workers;
        tasks.push(tokio::spawn(async move {
            let mut failed = 0usize;
            for _ in 0..share {
                let r = kms
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(vec![7u8; 64]))
                    .send()
                    .await;
                failed += usize::from(r.is_err());
            }
            failed
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(0);
    }
    let secs = started.elapsed().as_secs_f64();
    let done = (total / workers) * workers;
    println!(
        "{done} Encrypt calls, {workers} concurrent, {secs:.2} s: {:.0} requests/s, {failed} failed",
        done as f64 / secs
    );
}
