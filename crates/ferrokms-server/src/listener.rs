//! Accepting connections: a cap on how many are open, TLS, and timeouts that drop clients
//! which stall, so that slow or idle clients cannot starve the others.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::tls::Tls;
use crate::ServerError;

/// What one client may hold of the server; `[limits]` in the config file.
#[derive(Clone, Copy, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Connections open at once; the next waits in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// Time to finish the TLS handshake.
    #[serde(with = "seconds", rename = "handshake_timeout_seconds")]
    pub handshake_timeout: Duration,
    /// Time to send a request's headers, once it started one.
    #[serde(with = "seconds", rename = "header_timeout_seconds")]
    pub header_timeout: Duration,
    /// Time to send a request's body.
    #[serde(with = "seconds", rename = "body_timeout_seconds")]
    pub body_timeout: Duration,
    /// A connection on which nothing was sent or received for this long is closed (as AWS's
    /// load balancers do after 60 s).
    #[serde(with = "seconds", rename = "idle_timeout_seconds")]
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
        }
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
    }
}

/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper refuses buffers under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Binds `address`; also gives the address bound (a port 0 becomes a real one).
pub async fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| ServerError::Io(format!("binding {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    Ok((listener, bound))
}

/// How a request reached the service: `aws:SecureTransport` is true for a TLS connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    pub tls: bool,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<Tls>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let builder = builder(&limits);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let stream = Watched {
            inner: stream,
            activity: activity.clone(),
        };
        let watcher = graceful.watcher();
        let (router, tls, builder) = (router.clone(), tls.clone(), builder.clone());
        let transport = Transport { tls: tls.is_some() };
        tokio::spawn(async move {
            let _permit = permit;
            let idle_timeout = limits.idle_timeout;
            let connection = async move {
                let service =
                    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request.extensions_mut().insert(transport);
                        router.clone().oneshot(request)
                    });
                match tls {
                    None => {
                        let _ = watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), service))
                            .await;
                    }
                    Some(tls) => {
                        let Some(stream) = handshake(&tls, stream, peer, limits).await else {
                            return;
                        };
                        let _ = watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), service))
                            .await;
                    }
                }
            };
            tokio::select! {
                () = connection => {}
                () = activity.idle_for(idle_timeout) => {
                    tracing::debug!(peer = %peer, "idle connection closed");
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn handshake(
    tls: &Tls,
    stream: Watched<TcpStream>,
    peer: SocketAddr,
    limits: ConnectionLimits,
) -> Option<tokio_rustls::server::TlsStream<Watched<TcpStream>>> {
    match tokio::time::timeout(limits.handshake_timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(peer = %peer, "TLS handshake timed out");
            None
        }
    }
}

/// When a connection last moved bytes, in milliseconds since it was opened.
#[derive(Clone)]
struct Activity {
    opened: tokio::time::Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: tokio::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Completes once the connection has been silent for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            if last.elapsed() >= limit {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }
}

/// A stream that notes each time bytes pass, for the idle timeout.
struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
