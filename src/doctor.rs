//! `ferrokms doctor`: looks at a data directory (and the store and certificate its config
//! names) or a running node without changing anything, and says what is wrong in words an operator acts on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrokms_store::SqlStore;

/// More clock difference from the database than this is a problem: deletion windows,
/// rotations and grant expiries are decided by whichever node's clock runs the job.
const MAX_SKEW: Duration = Duration::from_secs(5);
/// A certificate closer than this to its end is a problem to act on now.
const CERT_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// What doctor looks at: a data directory, a running node, or both.
pub(crate) struct Subject {
    pub(crate) data_dir: Option<PathBuf>,
    /// A PostgreSQL URL; else the data directory's SQLite file.
    pub(crate) store: Option<String>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    /// A running node: `http://host:port` or `https://host:port`.
    pub(crate) endpoint: Option<String>,
    /// CAs to trust for the node's certificate, besides the system's.
    pub(crate) ca_bundle: Option<PathBuf>,
}

/// The files of a data directory that hold secrets (the root key, the admin's access key):
/// only the service's user may read them, whatever the directory's mode.
const SECRET_FILES: &[&str] = &["root-key", "admin-credentials"];

#[derive(Default)]
pub(crate) struct Report {
    lines: Vec<(bool, String)>,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.lines.push((true, what.into()));
    }

    fn problem(&mut self, what: impl Into<String>) {
        self.lines.push((false, what.into()));
    }

    pub(crate) fn problems(&self) -> usize {
        self.lines.iter().filter(|(ok, _)| !ok).count()
    }

    pub(crate) fn print(&self) {
        for (ok, what) in &self.lines {
            println!("{} {what}", if *ok { "ok     " } else { "PROBLEM" });
        }
        match self.problems() {
            0 => println!("no problems found"),
            1 => println!("1 problem found"),
            n => println!("{n} problems found"),
        }
    }
}

/// This process's effective user id, from /proc (no libc call needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) async fn examine(subject: &Subject) -> Report {
    let mut report = Report::default();
    if let Some(key) = &subject.tls_key {
        secret_file(key, &mut report);
    }
    if let Some(dir) = &subject.data_dir {
        if files(dir, &mut report) {
            root_key(dir, &mut report);
            store(dir, subject.store.as_deref(), &mut report).await;
        }
    }
    if let Some(cert) = &subject.tls_cert {
        let name = format!("TLS certificate {}", cert.display());
        let der = std::fs::read_to_string(cert)
            .map_err(|e| e.to_string())
            .and_then(|pem| {
                first_certificate(&pem).ok_or_else(|| "no PEM certificate in it".to_owned())
            });
        match der {
            Ok(der) => certificate(&name, &der, SystemTime::now(), &mut report),
            Err(e) => report.problem(format!("{name}: {e}")),
        }
    }
    if let Some(endpoint) = &subject.endpoint {
        node(endpoint, subject.ca_bundle.as_deref(), &mut report).await;
    }
    report
}

/// A running node: it answers, its clock agrees with this machine's, and the certificate it
/// presents (over https) is trusted and not about to end.
async fn node(endpoint: &str, ca_bundle: Option<&Path>, report: &mut Report) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let parsed = match ferrokms_server::client::Endpoint::parse(endpoint) {
        Ok(parsed) => parsed,
        Err(e) => {
            report.problem(e);
            return;
        }
    };
    let (tls, authority, address) = (parsed.is_tls(), parsed.authority(), parsed.address());
    let host = parsed.host().to_owned();
    let connect = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    );
    let tcp = match connect.await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            report.problem(format!(
                "the node at {endpoint} cannot be reached: {e}; is it running, and is {address} its listen address?"
            ));
            return;
        }
        Err(_) => {
            report.problem(format!(
                "the node at {endpoint} did not accept a connection within 5 s: check the address and firewalls"
            ));
            return;
        }
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    // Only the status line and headers matter: a node's answer is read up to this much.
    const MAX_ANSWER: u64 = 64 * 1024;
    let mut answer = Vec::new();
    let asked = now_millis();
    let exchanged = if tls {
        let config = match ferrokms_server::client::tls_client_config(ca_bundle) {
            Ok(c) => c,
            Err(e) => {
                report.problem(format!("--ca-bundle: {e}"));
                return;
            }
        };
        let Ok(name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
            report.problem(format!("{host} is not a host name or address"));
            return;
        };
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let mut stream = match connector.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                report.problem(format!(
                    "the node at {endpoint} failed the TLS handshake: {e}; clients refuse it too (an expired certificate, another name, or a CA not in --ca-bundle)"
                ));
                return;
            }
        };
        if let Some(der) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            let shown = format!("the certificate {endpoint} presents");
            certificate(&shown, der.as_ref(), SystemTime::now(), report);
        }
        match stream.write_all(request.as_bytes()).await {
            Ok(()) => (&mut stream)
                .take(MAX_ANSWER)
                .read_to_end(&mut answer)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    } else {
        let mut stream = tcp;
        match stream.write_all(request.as_bytes()).await {
            Ok(()) => (&mut stream)
                .take(MAX_ANSWER)
                .read_to_end(&mut answer)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    };
    let answered = now_millis();
    if let Err(e) = exchanged {
        if answer.is_empty() {
            report.problem(format!("the node at {endpoint} closed the connection: {e}"));
            return;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let Some(status) = text.lines().next().filter(|l| l.starts_with("HTTP/1.1 ")) else {
        report.problem(format!(
            "{endpoint} did not answer in HTTP: is it a ferrokms node?"
        ));
        return;
    };
    report.ok(format!(
        "the node at {endpoint} answers ({})",
        status.trim()
    ));
    let date = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("date")
                .then(|| value.trim().to_owned())
        })
        .and_then(|d| httpdate::parse_http_date(&d).ok());
    match date {
        Some(date) => {
            let node_millis = date
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            // The Date header has whole seconds: the node read its clock up to 1 s earlier.
            let node = format!("the node at {endpoint}");
            clock(&node, asked - 1000, answered, node_millis, report);
        }
        None => report.problem(format!(
            "the node at {endpoint} sent no Date header: its clock cannot be compared"
        )),
    }
}

/// The directory and its files: the service's user's alone. False if there is no directory.
fn files(dir: &Path, report: &mut Report) -> bool {
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            report.problem(format!("{shown} is not a directory"));
            return false;
        }
        Err(e) => {
            report.problem(format!(
                "{shown}: {e}; `ferrokms init --data-dir {shown}` makes a data directory"
            ));
            return false;
        }
    };
    let me = effective_uid();
    if me.is_some_and(|uid| uid != meta.uid()) {
        report.problem(format!(
            "{shown} belongs to uid {}, not to this user (uid {}): run doctor as the service's user, e.g. sudo -u ferrokms ferrokms doctor",
            meta.uid(),
            me.unwrap_or_default()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        report.problem(format!(
            "{shown} is open to group or others (mode {:o}): chmod 700 {shown}",
            meta.mode() & 0o777
        ));
    } else {
        report.ok(format!(
            "{shown} is private (mode {:o})",
            meta.mode() & 0o777
        ));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        report.problem(format!("{shown} cannot be listed: check its permissions"));
        return false;
    };
    let mut foreign = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        // Followed, as the service follows them.
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        if m.is_file() && me.is_some_and(|uid| uid != m.uid()) {
            foreign += 1;
            report.problem(format!(
                "{} belongs to uid {}: chown it to the service's user, who must write it",
                path.display(),
                m.uid()
            ));
        }
    }
    if foreign == 0 {
        report.ok(format!("every file in {shown} is the service user's"));
    }
    for name in SECRET_FILES {
        let path = dir.join(name);
        if path.exists() {
            secret_file(&path, report);
        }
    }
    true
}

/// A file only the service's user may read.
fn secret_file(path: &Path, report: &mut Report) {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.mode() & 0o077 != 0 => report.problem(format!(
            "{shown} is readable by group or others (mode {:o}): chmod 600 {shown}",
            m.mode() & 0o777
        )),
        Ok(m) => report.ok(format!("{shown} is private (mode {:o})", m.mode() & 0o777)),
        Err(e) => report.problem(format!("{shown}: {e}")),
    }
}

fn root_key(dir: &Path, report: &mut Report) {
    let (file, hsm) = (
        dir.join("root-key"),
        dir.join(ferrokms_server::root_of_trust::HSM_CONFIG_FILE),
    );
    // An HSM that is only the former root key still needs the file: opening would make one.
    let needs_file = match ferrokms_server::root_of_trust::HsmConfig::read(dir) {
        Ok(None) => true,
        Ok(Some(config)) => config.role == ferrokms_server::root_of_trust::HsmRole::Former,
        Err(e) => {
            report.problem(format!("root key: {e}"));
            return;
        }
    };
    if !file.exists() && needs_file {
        report.problem(format!(
            "{} has no root key (no root-key file{}): every key in it is unreadable without it; restore root-key from your backup of it",
            dir.display(),
            if hsm.exists() { ", and hsm.toml names the HSM only as the former root" } else { "" }
        ));
        return;
    }
    match ferrokms_server::root_of_trust::open(dir) {
        Ok(root) => report.ok(format!("root key: {} opens", root.description)),
        Err(e) => report.problem(format!(
            "root key: {e}{}",
            if hsm.exists() {
                " (check the token is present, the PIN file or variable in hsm.toml, and the module path)"
            } else {
                ""
            }
        )),
    }
}

async fn store(dir: &Path, url: Option<&str>, report: &mut Report) {
    let location = match url {
        Some(url) => url.to_owned(),
        None => dir.join("ferrokms.db").display().to_string(),
    };
    let name = if url.is_some() {
        "the PostgreSQL store"
    } else {
        "the SQLite store"
    };
    let asked = now_millis();
    let probe = match SqlStore::probe(&location).await {
        Ok(p) => p,
        Err(e) => {
            report.problem(format!(
                "{name} cannot be read: {e}; check the URL, that the database runs and lets this user in"
            ));
            return;
        }
    };
    let answered = now_millis();
    let (have, known) = (probe.schema_version, probe.known_schema_version);
    if have > known {
        report.problem(format!(
            "{name} has schema version {have}, newer than this ferrokms knows ({known}): run the ferrokms that wrote it"
        ));
    } else if have < known {
        report.ok(format!(
            "{name} has schema version {have}; this ferrokms migrates it to {known} when it next starts"
        ));
    } else {
        report.ok(format!("{name} is reachable, schema version {have}"));
    }
    clock(
        "the database",
        asked,
        answered,
        probe.database_millis,
        report,
    );
}

/// This machine's clock against `other`'s, read between `asked` and `answered` as `theirs`.
fn clock(other: &str, asked: i64, answered: i64, theirs: i64, report: &mut Report) {
    let local = asked + (answered - asked) / 2;
    let skew = local - theirs;
    let tolerance =
        i64::try_from(MAX_SKEW.as_millis()).unwrap_or(i64::MAX) + (answered - asked) / 2;
    if skew.abs() > tolerance {
        report.problem(format!(
            "this machine's clock is {:.1} s {} {other}'s: synchronise both with NTP (chrony or systemd-timesyncd); key deletions, rotations and SigV4 dates depend on it",
            skew.abs() as f64 / 1000.0,
            if skew > 0 { "ahead of" } else { "behind" }
        ));
    } else {
        report.ok(format!(
            "the clock is within {} ms of {other}'s",
            skew.abs()
        ));
    }
}

/// A certificate's end: `shown` names it in the report.
fn certificate(shown: &str, der: &[u8], now: SystemTime, report: &mut Report) {
    let Some(not_after) = not_after(der) else {
        report.problem(format!("{shown}: its validity cannot be read"));
        return;
    };
    let date = time::OffsetDateTime::from(not_after).date();
    match not_after.duration_since(now) {
        Err(_) => report.problem(format!(
            "{shown} expired on {date}: clients refuse it; install a new one and send SIGHUP (systemctl reload ferrokms)"
        )),
        Ok(left) if left < CERT_WARNING => report.problem(format!(
            "{shown} expires in {} days ({date}): renew it and send SIGHUP (systemctl reload ferrokms)",
            left.as_secs() / 86400
        )),
        Ok(left) => report.ok(format!(
            "{shown} is valid for {} more days ({date})",
            left.as_secs() / 86400
        )),
    }
}

/// The DER of the first certificate of a PEM file.
fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body = pem.split("-----BEGIN CERTIFICATE-----").nth(1)?;
    let body = body.split("-----END CERTIFICATE-----").next()?;
    let text: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The notAfter of an X.509 certificate (RFC 5280: Certificate → TBSCertificate →
/// [version], serial, signature, issuer, validity).
fn not_after(der: &[u8]) -> Option<SystemTime> {
    const SEQUENCE: u8 = 0x30;
    let (tag, certificate, _) = element(der)?;
    let (tbs_tag, tbs, _) = element(certificate)?;
    if tag != SEQUENCE || tbs_tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // The explicit [0] version is optional.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serial, signature algorithm, issuer
    }
    let (validity_tag, validity, _) = element(rest)?;
    if validity_tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = element(validity)?;
    let (time_tag, value, _) = element(after_not_before)?;
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = match time_tag {
        // UTCTime: YYMMDDHHMMSS, years 1950 to 2049.
        0x17 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        // GeneralizedTime: YYYYMMDDHHMMSS.
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    let seconds = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_malformed_der_is_refused_not_panicked_on() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 1],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x80],
        ] {
            assert!(not_after(bad).is_none(), "{bad:?}");
        }
        assert!(first_certificate("no pem here").is_none());
    }
}
