//! ferrokms-bench: SigV4-signed KMS requests over keep-alive HTTP from C connections for T
//! seconds, against ferrokms (or any KMS endpoint, such as moto's server), with the same
//! generator against a bare hyper server that answers at once (the ceiling); prints
//! requests/s, latency percentiles and errors, as text or JSON.

mod ceiling;
mod client;
mod workload;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;

use client::Signer;
use workload::Workload;

#[derive(Parser)]
#[command(name = "ferrokms-bench", version)]
struct Args {
    /// The KMS endpoint to load.
    #[arg(long, default_value = "http://127.0.0.1:4599")]
    endpoint: String,
    /// Another KMS endpoint to run the same workloads against, for comparison (for example
    /// moto's server: `moto_server -p 5000`).
    #[arg(long)]
    peer: Option<String>,
    /// Workloads to run [default: all]: encrypt-64, encrypt-4k, decrypt-4k,
    /// generate-data-key, sign-ecc-p256, sign-rsa-2048, generate-mac, create-key,
    /// describe-key.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// Seconds each workload runs.
    #[arg(short, long, default_value_t = 10.0)]
    seconds: f64,
    /// Keys describe-key describes, one after another: the caller's existing keys, and new
    /// ones made first if it has fewer.
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Run encrypt-64, encrypt-4k, decrypt-4k and generate-data-key under this existing key
    /// (a key of a custom key store, say) instead of a new one.
    #[arg(long)]
    key_id: Option<String>,
    /// Seconds each workload runs unmeasured first, against each endpoint (caches warm up).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Skip the bare-hyper ceiling.
    #[arg(long)]
    no_ceiling: bool,
    /// After each workload's run at full speed, run it again against the first endpoint
    /// at half the throughput it reached, paced, for latency under moderate load.
    #[arg(long)]
    half_load: bool,
    /// Instead of full speed, pace each workload at this many requests per second in all
    /// (a request's latency counts from when it was due) and skip the ceiling.
    #[arg(long)]
    rate: Option<f64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Instead of running the workloads: prepare each, and write into this directory a wrk
    /// script (`<workload>.lua`) replaying one request signed now, and the size of its
    /// answer (`<workload>.bytes`), for `scripts/wrk.sh`.
    #[arg(long)]
    wrk: Option<std::path::PathBuf>,
    /// Only serve the bare-hyper ceiling on this address, answering with this many bytes
    /// (`--serve-ceiling 127.0.0.1:4600=4500`), until killed: the ceiling `scripts/wrk.sh`
    /// loads.
    #[arg(long, value_name = "ADDR=BYTES")]
    serve_ceiling: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "test")]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", default_value = "test")]
    secret_access_key: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
}

/// What one run measured.
struct Measured {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// Latencies of the successful requests, in microseconds, sorted.
    latencies: Vec<u32>,
    first_error: Option<String>,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        f64::from(self.latencies[i]) / 1000.0
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "requests_per_second": self.rps(),
            "p50_ms": self.percentile_ms(50.0),
            "p90_ms": self.percentile_ms(90.0),
            "p99_ms": self.percentile_ms(99.0),
            "p99_9_ms": self.percentile_ms(99.9),
            "first_error": self.first_error,
        })
    }
}

/// Sends the workload's requests from `connections` workers until `seconds` pass: each as
/// soon as the last is answered, or, with a `rate` (requests per second in all), on a fixed
/// schedule. A paced request that is behind schedule counts its latency from when it was
/// due, not from when it was sent, so that a stalled server cannot hide its stall by
/// delaying the requests behind it.
async fn run(
    signer: &Signer,
    workload: &Workload,
    connections: usize,
    seconds: f64,
    rate: Option<f64>,
) -> Measured {
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    // Each worker's own interval, and its offset so that the workers interleave.
    let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r.max(1.0)));
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (signer, workload) = (signer.clone(), workload.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut errors, mut first_error, mut n) = (0u64, None, worker);
            let mut due = interval.map(|i| started + i.mul_f64(worker as f64 / connections as f64));
            while Instant::now() < until {
                n += connections;
                let (target, body) = workload.request(n);
                let sent = match (due, interval) {
                    (Some(at), Some(i)) => {
                        due = Some(at + i);
                        if at > Instant::now() {
                            // On time: the timer's own lateness (up to a millisecond or two
                            // with tokio's timer wheel) is the generator's, not the server's.
                            tokio::time::sleep_until(at.into()).await;
                            Instant::now()
                        } else {
                            // Behind schedule because an answer came late: the wait counts.
                            at
                        }
                    }
                    _ => Instant::now(),
                };
                match signer.send(target, body).await {
                    Ok(_) => latencies
                        .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut measured = Measured {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        first_error: None,
    };
    for w in workers {
        if let Ok((latencies, errors, first_error)) = w.await {
            measured.latencies.extend(latencies);
            measured.errors += errors;
            if measured.first_error.is_none() {
                measured.first_error = first_error;
            }
        }
    }
    measured.elapsed = started.elapsed();
    measured.requests = measured.latencies.len() as u64;
    measured.latencies.sort_unstable();
    measured
}

fn row(label: &str, m: &Measured, ceiling: Option<f64>) -> String {
    let ratio = ceiling
        .map(|c| format!("{:>6.1}%", 100.0 * m.rps() / c))
        .unwrap_or_else(|| "      -".into());
    format!(
        "{label:<34} {:>10.0} {ratio} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
        m.rps(),
        m.percentile_ms(50.0),
        m.percentile_ms(90.0),
        m.percentile_ms(99.0),
        m.percentile_ms(99.9),
        m.errors
    )
}

/// A Lua string literal of `bytes`.
fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(*b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Writes `dir/<name>.lua` and `dir/<name>.bytes` for each workload (see `--wrk`).
async fn write_wrk_scripts(args: &Args, names: &[String], dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let signer = Signer::new(
        &args.endpoint,
        &args.access_key_id,
        &args.secret_access_key,
        &args.region,
        args.connections,
    )?;
    for name in names {
        let workload =
            Workload::prepare(name, &signer, args.keys, 1, args.key_id.as_deref()).await?;
        let (target, body) = workload.request(0);
        // The answer's size, from one real call.
        let answer = signer.send(target, body.clone()).await?;
        let mut lua = format!(
            "-- {name}: one request signed at {:?}, replayed\nwrk.method = \"POST\"\nwrk.body = {}\n",
            std::time::SystemTime::now(),
            lua_string(&body)
        );
        for (k, v) in signer.signed_headers(target, &body)? {
            // wrk adds a `Host` of its own unless the script sets exactly that name.
            let k = if k == "host" { "Host".to_owned() } else { k };
            lua.push_str(&format!(
                "wrk.headers[{}] = {}\n",
                lua_string(k.as_bytes()),
                lua_string(v.as_bytes())
            ));
        }
        std::fs::write(dir.join(format!("{name}.lua")), lua)?;
        std::fs::write(dir.join(format!("{name}.bytes")), answer.len().to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(spec) = &args.serve_ceiling {
        let (addr, bytes) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--serve-ceiling takes ADDR=BYTES"))?;
        let addr = ceiling::start_on(addr.parse()?, bytes.parse()?)?;
        println!("ceiling listening on {addr}");
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
    let names = if args.workloads.is_empty() {
        workload::NAMES.iter().map(|n| n.to_string()).collect()
    } else {
        args.workloads.clone()
    };
    for name in &names {
        if !workload::NAMES.contains(&name.as_str()) {
            bail!(
                "unknown workload {name}; the workloads are {:?}",
                workload::NAMES
            );
        }
    }
    if let Some(dir) = &args.wrk {
        return write_wrk_scripts(&args, &names, dir).await;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let signer = |endpoint: &str| {
        Signer::new(
            endpoint,
            &args.access_key_id,
            &args.secret_access_key,
            &args.region,
            args.connections,
        )
    };
    let mut targets = vec![("ferrokms", signer(&args.endpoint)?)];
    if let Some(peer) = &args.peer {
        targets.push(("peer", signer(peer)?));
    }
    if !args.json {
        println!(
            "{} connections, {} s per workload, {cores} cores; ratio = share of the bare-hyper ceiling",
            args.connections, args.seconds
        );
        println!(
            "{:<34} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "workload", "req/s", "ratio", "p50 ms", "p90 ms", "p99 ms", "p99.9", "errors"
        );
    }
    let mut results = Vec::new();
    for name in &names {
        let mut ceiling_rps = None;
        let mut entry = json!({ "workload": name, "connections": args.connections });
        for (label, signer) in &targets {
            let workload = Workload::prepare(
                name,
                signer,
                args.keys,
                args.connections,
                args.key_id.as_deref(),
            )
            .await?;
            if ceiling_rps.is_none() && !args.no_ceiling && args.rate.is_none() {
                let bare = ceiling::start(workload.response_bytes).await?;
                let bare_signer = Signer::new(
                    &format!("http://{bare}"),
                    &args.access_key_id,
                    &args.secret_access_key,
                    &args.region,
                    args.connections,
                )?;
                let m = run(
                    &bare_signer,
                    &workload,
                    args.connections,
                    args.seconds,
                    None,
                )
                .await;
                if !args.json {
                    println!("{}", row(&format!("{name} (bare hyper)"), &m, None));
                }
                ceiling_rps = Some(m.rps());
                entry["ceiling"] = m.json();
            }
            if args.warmup > 0.0 {
                run(signer, &workload, args.connections, args.warmup, None).await;
            }
            let m = run(signer, &workload, args.connections, args.seconds, args.rate).await;
            if !args.json {
                println!("{}", row(&format!("{name} ({label})"), &m, ceiling_rps));
                if let Some(e) = &m.first_error {
                    println!("  first error: {e}");
                }
            }
            let mut result = m.json();
            if let Some(c) = ceiling_rps {
                result["share_of_ceiling"] = json!(m.rps() / c);
            }
            if args.half_load && *label == "ferrokms" {
                let half = m.rps() / 2.0;
                let paced = run(
                    signer,
                    &workload,
                    args.connections,
                    args.seconds,
                    Some(half),
                )
                .await;
                if !args.json {
                    println!(
                        "{}",
                        row(&format!("{name} ({label}, half load)"), &paced, ceiling_rps)
                    );
                }
                result["half_load"] = paced.json();
            }
            entry[*label] = result;
        }
        results.push(entry);
    }
    if args.json {
        let out = json!({
            "cores": cores,
            "connections": args.connections,
            "seconds_per_workload": args.seconds,
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
