//! The web console's files at `/console/`: the front end of `console/` (TypeScript, built by
//! Vite into `console/dist`, embedded by `build.rs`). The console is only a client: it signs
//! each call with SigV4 in the browser, so nothing here authenticates anyone, and no call it
//! makes is treated differently from any other client's.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_files.rs"));
}

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// No script but the console's own files, nothing inline, no framing, calls only to this
/// origin (the API the console is a client of).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn file(path: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

fn answer(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// The answer to a request under `/console`, or None for any other path.
pub fn serve(method: &Method, path: &str) -> Option<Response> {
    let rest = path.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let head = *method == Method::HEAD;
    if *method != Method::GET && !head {
        let mut r = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Body::from("method not allowed\n"),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(r);
    }
    if rest.is_empty() {
        let mut r = answer(
            StatusCode::PERMANENT_REDIRECT,
            "text/plain; charset=utf-8",
            Body::empty(),
        );
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/console/"));
        return Some(r);
    }
    let name = match &rest[1..] {
        "" => "index.html",
        name => name,
    };
    let Some(bytes) = file(name) else {
        return Some(answer(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Body::from("not found\n"),
        ));
    };
    let mut r = answer(
        StatusCode::OK,
        content_type(name),
        if head {
            Body::empty()
        } else {
            Body::from(bytes)
        },
    );
    // Built files carry their content's hash in their names; the page that names them
    // is asked for again each time, so a new binary's console is seen at once.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_embedded_and_nothing_else_is_served() {
        let page = serve(&Method::GET, "/console/").expect("under /console");
        assert_eq!(page.status(), StatusCode::OK);
        let index = file("index.html").expect("index.html is embedded");
        let index = std::str::from_utf8(index).expect("UTF-8");
        // Every script the page loads is one of its own files (the CSP allows no other).
        assert!(!index.contains("<script>"), "inline script in index.html");
        for src in index.split("src=\"").skip(1) {
            let src = src.split('"').next().unwrap_or_default();
            let path = src.strip_prefix("/console/").expect("a console path");
            assert!(file(path).is_some(), "{src} is not embedded");
        }
        assert_eq!(
            serve(&Method::GET, "/console/../Cargo.toml").map(|r| r.status()),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            serve(&Method::POST, "/console/").map(|r| r.status()),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert!(serve(&Method::GET, "/consoleX").is_none());
        assert!(serve(&Method::GET, "/").is_none());
    }
}
