//! Prometheus metrics: requests by operation and outcome, latency histograms, keys by state,
//! and requests per key and operation (what AWS bills per call, made visible).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ferrokms_store::Store;

/// Latency bucket bounds, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    key_requests: Mutex<BTreeMap<(String, String), u64>>,
    unauthenticated_dropped: AtomicU64,
}

/// Label values are our own names and ARNs, but escape them as the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts a request. Both labels are the service's own names (operations from the
    /// tables, `Unknown` for the rest; error codes), so what callers send cannot grow them.
    pub fn record(
        &self,
        operation: &'static str,
        outcome: &'static str,
        elapsed: Duration,
        keys: &[String],
    ) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((operation.to_owned(), outcome.to_owned()))
                .or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(operation.to_owned()).or_default();
            if h.counts.is_empty() {
                h.counts = vec![0; BUCKETS.len()];
            }
            let secs = elapsed.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
        if let Ok(mut k) = self.key_requests.lock() {
            for key in keys {
                *k.entry((key.clone(), operation.to_owned())).or_default() += 1;
            }
        }
    }

    pub fn set_unauthenticated_dropped(&self, n: u64) {
        self.unauthenticated_dropped.store(n, Ordering::Relaxed);
    }

    pub async fn render(&self, store: &dyn Store) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ferrokms_unauthenticated_unrecorded_total Failed authentications beyond the per-address rate, counted but not recorded."
        );
        let _ = writeln!(
            out,
            "# TYPE ferrokms_unauthenticated_unrecorded_total counter"
        );
        let _ = writeln!(
            out,
            "ferrokms_unauthenticated_unrecorded_total {}",
            self.unauthenticated_dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ferrokms_requests_total Requests by operation and outcome."
        );
        let _ = writeln!(out, "# TYPE ferrokms_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((op, outcome), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "ferrokms_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                    label(op),
                    label(outcome)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ferrokms_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(out, "# TYPE ferrokms_request_duration_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for (op, h) in l.iter() {
                let op = label(op);
                for (bound, n) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "ferrokms_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "ferrokms_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "ferrokms_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "ferrokms_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(out, "# HELP ferrokms_keys Keys by state.");
        let _ = writeln!(out, "# TYPE ferrokms_keys gauge");
        for (state, n) in store.key_states().await.unwrap_or_default() {
            let _ = writeln!(out, "ferrokms_keys{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP ferrokms_key_requests_total Requests per key and operation."
        );
        let _ = writeln!(out, "# TYPE ferrokms_key_requests_total counter");
        if let Ok(k) = self.key_requests.lock() {
            for ((key, op), n) in k.iter() {
                let _ = writeln!(
                    out,
                    "ferrokms_key_requests_total{{key=\"{}\",operation=\"{}\"}} {n}",
                    label(key),
                    label(op)
                );
            }
        }
        out
    }
}
