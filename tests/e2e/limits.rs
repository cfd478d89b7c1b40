//! What a client can make the server do: bodies over the limit, bodies never finished,
//! headers sent slowly, idle connections by the thousand and deeply nested JSON each get an
//! AWS-style answer or a closed connection, change nothing, and leave well-behaved clients
//! served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{code, Server};
use crate::{encrypt, new_key};

fn start_with_limits(temp: &tempfile::TempDir, limits: &str) -> Server {
    start_with_limits_and(temp, limits, &[])
}

fn start_with_limits_and(temp: &tempfile::TempDir, limits: &str, extra: &[&str]) -> Server {
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(&config, format!("[limits]\n{limits}\n")).unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(extra);
    Server::start_in(&temp.path().join("data"), &args)
}

fn request_head(target: &str, content_length: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.{target}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// Everything the server sends until it closes the connection (or `limit` passes).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

async fn key_count(server: &Server) -> usize {
    server
        .client()
        .list_keys()
        .send()
        .await
        .unwrap()
        .keys()
        .len()
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_limits(&temp, "");
    let before = key_count(&server).await;
    let description = "x".repeat(300 * 1024);
    let body = format!(r#"{{"Description":"{description}"}}"#);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(request_head("CreateKey", body.len()).as_bytes())
        .unwrap();
    // The server may answer before reading it all; a reset while writing is fine.
    let _ = stream.write_all(body.as_bytes());
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#""__type":"RequestEntityTooLargeException""#),
        "{answer}"
    );
    assert_eq!(key_count(&server).await, before);
}

#[tokio::test]
async fn a_body_never_finished_is_dropped_in_time() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_limits(&temp, "body_timeout_seconds = 1");
    let before = key_count(&server).await;
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(format!("{}{{\"Descr", request_head("CreateKey", 1000)).as_bytes())
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeoutException"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(key_count(&server).await, before);
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_limits(
        &temp,
        "header_timeout_seconds = 1\nidle_timeout_seconds = 2",
    );
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Tar")
        .unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "slow headers: {took:?}");

    let mut idle = TcpStream::connect(&server.addr).unwrap();
    let (_, took) = read_until_closed(&mut idle, Duration::from_secs(15));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "idle: {took:?}"
    );
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_starve_a_signed_client() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_limits(&temp, "");
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    // And some that start a request and stall in its body.
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(request_head("Encrypt", 500).as_bytes())
                .unwrap();
            s
        })
        .collect();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    for i in 0..20 {
        encrypt(&kms, &id, format!("still served {i}").as_str())
            .await
            .unwrap();
    }
    drop((idle, stalled));
}

#[tokio::test]
async fn deeply_nested_json_is_a_serialization_error() {
    let temp = tempfile::tempdir().unwrap();
    // Dev mode reads the request without checking its signature, so the body reaches the
    // parser with any Authorization header.
    let server = start_with_limits_and(&temp, "", &["--dev"]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(r#"{{"KeyId":"{id}","Plaintext":"aGk=","EncryptionContext":{nested}}}"#);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = request_head("Encrypt", body.len()).replace(
        "\r\n\r\n",
        "\r\nX-Amz-Date: 20260101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
    );
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains(r#""__type":"SerializationException""#),
        "{answer}"
    );
    // The server is still there for everyone.
    let err = kms
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_limits(&temp, "max_header_bytes = 16384");
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = request_head("ListKeys", 2).replace(
        "\r\n\r\n",
        &format!("\r\nX-Padding: {}\r\n\r\n", "p".repeat(64 * 1024)),
    );
    let _ = stream.write_all(format!("{head}{{}}").as_bytes());
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A request of ordinary size on a new connection is still served.
    key_count(&server).await;
}
