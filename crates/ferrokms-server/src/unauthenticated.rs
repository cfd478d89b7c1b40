//! Requests that fail authentication. Anyone can send them, so what they cost is bounded:
//! each is recorded compactly (no request parameters, no message longer than a line, no
//! account), at most a few per second per source address, and the records dropped beyond
//! that are counted, in the metrics and in the next record kept for that address.
//!
//! CloudTrail delivers an event to the account whose credentials signed it; a request whose
//! signature does not verify proves nothing about whose it is. So such a record never goes
//! into the trail of the account that owns an access key id the request merely names: it is
//! the service's own (account `unknown`, which no LookupEvents caller sees), and the key id
//! is shown only as a claim, for the operator's `audit export`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::http::HeaderMap;

use crate::api::operations::Operation;

/// Records kept per source address and second (the bucket's size and refill rate).
const RECORDS_PER_SECOND: f64 = 5.0;
/// Records kept per second from all addresses together: at about 1 KB each, a flood from
/// everywhere at once grows the store by at most some 20 KB a second (1.7 GB a day), and
/// the counts of what was dropped still say how big it was.
const RECORDS_PER_SECOND_IN_ALL: f64 = 20.0;
/// Addresses tracked before idle (full) buckets are dropped.
const MAX_SOURCES: usize = 10_000;
/// Longest error message and user agent a record keeps.
pub const MAX_TEXT: usize = 256;

struct Bucket {
    tokens: f64,
    filled: Instant,
    /// Records dropped since the last one kept for this address.
    dropped: u64,
}

/// Which failed authentications are recorded.
pub struct Limiter {
    sources: Mutex<HashMap<IpAddr, Bucket>>,
    all: Mutex<Bucket>,
    dropped: AtomicU64,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            sources: Default::default(),
            all: Mutex::new(Bucket {
                tokens: RECORDS_PER_SECOND_IN_ALL,
                filled: Instant::now(),
                dropped: 0,
            }),
            dropped: AtomicU64::new(0),
        }
    }
}

/// What one bucket stands for: an IPv4 address, or an IPv6 /64 (what one host or one
/// customer gets, so that rotating through its addresses buys nothing).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Takes a token from `bucket` refilled at `rate` per second up to `rate`.
fn take(bucket: &mut Bucket, rate: f64, now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(bucket.filled).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
    bucket.filled = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// A record to keep, and how many of this address's were dropped before it.
pub struct Admitted {
    pub dropped_before: u64,
}

impl Limiter {
    /// Whether to record a failed authentication from `source` now.
    pub fn admit(&self, source: IpAddr, now: Instant) -> Option<Admitted> {
        let source = source_of(source);
        let Ok(mut sources) = self.sources.lock() else {
            return None;
        };
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            let full = RECORDS_PER_SECOND;
            sources.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.filled).as_secs_f64() * full < full
            });
            if sources.len() >= MAX_SOURCES {
                // Every tracked address is busy: a new one is not recorded, only counted.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let bucket = sources.entry(source).or_insert(Bucket {
            tokens: RECORDS_PER_SECOND,
            filled: now,
            dropped: 0,
        });
        let in_all = |now| {
            self.all
                .lock()
                .is_ok_and(|mut all| take(&mut all, RECORDS_PER_SECOND_IN_ALL, now))
        };
        if take(bucket, RECORDS_PER_SECOND, now) && in_all(now) {
            Some(Admitted {
                dropped_before: std::mem::take(&mut bucket.dropped),
            })
        } else {
            bucket.dropped += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Failed authentications not recorded, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What a request that failed authentication claims to be, taken only as far as it can be
/// checked: the event name must be one the service has (else `Unknown`), the access key id
/// must look like one, the Region must be a Region name.
pub struct Claimed {
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub region: String,
    pub access_key: Option<String>,
}

fn looks_like_access_key(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn looks_like_region(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn claimed(headers: &HeaderMap, body: &[u8]) -> Claimed {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scope: Vec<&str> = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split([',', ' ']).next())
        .map(|c| c.split('/').collect())
        .unwrap_or_default();
    let service = scope.get(3).copied().unwrap_or("kms");
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (event_source, event_name) = match service {
        "sts" => ("sts.amazonaws.com", crate::sts::known_action(body)),
        "cloudtrail" => (
            "cloudtrail.amazonaws.com",
            if crate::audit::lookup::names_lookup_events(target) {
                "LookupEvents"
            } else {
                "Unknown"
            },
        ),
        _ if target == crate::explain::operation::TARGET => {
            ("kms.amazonaws.com", crate::explain::operation::NAME)
        }
        _ => (
            "kms.amazonaws.com",
            target
                .strip_prefix("TrentService.")
                .and_then(Operation::spec_named)
                .map_or("Unknown", |spec| spec.name),
        ),
    };
    Claimed {
        event_source,
        event_name,
        region: scope
            .get(2)
            .filter(|r| looks_like_region(r))
            .map(|r| r.to_string())
            .unwrap_or_default(),
        access_key: scope
            .first()
            .filter(|k| looks_like_access_key(k))
            .map(|k| k.to_string()),
    }
}

/// `text` cut to at most `MAX_TEXT` bytes, at a character boundary.
pub fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_source_is_recorded_a_few_times_a_second_and_the_rest_counted() {
        let limiter = Limiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        let kept = (0..100)
            .filter(|_| limiter.admit(a, start).is_some())
            .count();
        assert_eq!(kept, RECORDS_PER_SECOND as usize);
        assert_eq!(limiter.dropped(), 100 - kept as u64);
        assert!(
            limiter.admit(b, start).is_some(),
            "another address has its own bucket"
        );
        let later = limiter.admit(a, start + Duration::from_secs(1)).unwrap();
        assert_eq!(later.dropped_before, 100 - kept as u64);
        assert_eq!(
            limiter
                .admit(a, start + Duration::from_secs(1))
                .unwrap()
                .dropped_before,
            0
        );
    }

    #[test]
    fn an_ipv6_network_shares_one_bucket_and_all_share_a_ceiling() {
        let limiter = Limiter::default();
        let now = Instant::now();
        let kept = (0..100u16)
            .filter(|i| {
                let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, *i));
                limiter.admit(ip, now).is_some()
            })
            .count();
        assert_eq!(kept, RECORDS_PER_SECOND as usize);
        let limiter = Limiter::default();
        let kept = (0..1000u32)
            .filter(|i| {
                limiter
                    .admit(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), now)
                    .is_some()
            })
            .count();
        assert_eq!(kept, RECORDS_PER_SECOND_IN_ALL as usize);
    }

    #[test]
    fn the_table_of_sources_stays_bounded() {
        let limiter = Limiter::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 500) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            limiter.admit(ip, now);
        }
        assert!(limiter.sources.lock().unwrap().len() <= MAX_SOURCES);
        // All but the ceiling of one second were dropped, the 500 beyond the table among them.
        assert_eq!(
            limiter.dropped(),
            MAX_SOURCES as u64 + 500 - RECORDS_PER_SECOND_IN_ALL as u64
        );
    }

    #[test]
    fn claims_are_taken_only_as_far_as_they_check() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        headers.insert(
            "x-amz-target",
            "TrentService.MadeUpOperation".parse().unwrap(),
        );
        let c = claimed(&headers, b"");
        assert_eq!(c.event_name, "Unknown");
        assert_eq!(c.access_key.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
        assert_eq!(c.region, "us-east-1");
        headers.insert("x-amz-target", "TrentService.Encrypt".parse().unwrap());
        assert_eq!(claimed(&headers, b"").event_name, "Encrypt");
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=<script>/x/Region!/kms/aws4_request"
                .parse()
                .unwrap(),
        );
        let c = claimed(&headers, b"");
        assert_eq!(c.access_key, None);
        assert_eq!(c.region, "");
        assert_eq!(bounded(&"é".repeat(200)).len(), MAX_TEXT);
    }
}
