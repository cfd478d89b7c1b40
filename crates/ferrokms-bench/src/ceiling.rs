//! The ceiling: a bare hyper server, in a runtime of its own as a server process would have,
//! that answers every request at once with a fixed body of the size the real one sends.

use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Starts the server on a port of its own; it lives as long as the process.
pub async fn start(response_bytes: usize) -> Result<SocketAddr> {
    start_on("127.0.0.1:0".parse()?, response_bytes)
}

/// Starts the server on `addr`; it lives as long as the process.
pub fn start_on(addr: SocketAddr, response_bytes: usize) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // `{"x":"aaaa"}` padded to the size of the real answer.
    let padding = response_bytes.saturating_sub(8);
    let body = Bytes::from(format!("{{\"x\":\"{}\"}}", "a".repeat(padding)));
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(_) => return,
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        let body = body.clone();
                        async move {
                            hyper::Response::builder()
                                .header("content-type", "application/x-amz-json-1.1")
                                .body(Full::new(body))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}
