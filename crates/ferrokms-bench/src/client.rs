//! Signed KMS requests over a pool of keep-alive connections.

use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Signer {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    host: String,
    credentials: Credentials,
    region: String,
}

impl Signer {
    pub fn new(
        endpoint: &str,
        access_key: &str,
        secret: &str,
        region: &str,
        connections: usize,
    ) -> Result<Self> {
        let uri: http::Uri = endpoint.parse().context("the endpoint is not a URL")?;
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| anyhow!("the endpoint names no host"))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build_http();
        Ok(Signer {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            host,
            credentials: Credentials::new(access_key, secret, None, None, "bench"),
            region: region.to_owned(),
        })
    }

    /// Every header of `TrentService.<target>` with `body`, signed now: what a replaying
    /// generator such as wrk sends (the signature holds for the 15 minutes SigV4 allows).
    pub fn signed_headers(&self, target: &str, body: &[u8]) -> Result<Vec<(String, String)>> {
        let x_amz_target = format!("TrentService.{target}");
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", x_amz_target.as_str()),
        ];
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let url = format!("{}/", self.endpoint);
        let signable =
            SignableRequest::new("POST", &url, headers.into_iter(), SignableBody::Bytes(body))?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Ok(all)
    }

    /// Sends `TrentService.<target>` with `body`; the response body, or the error's `__type`.
    pub async fn send(&self, target: &str, body: Bytes) -> Result<Bytes> {
        let mut request = http::Request::post(format!("{}/", self.endpoint));
        for (k, v) in self.signed_headers(target, &body)? {
            request = request.header(k, v);
        }
        let response = self.client.request(request.body(Full::new(body))?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let kind = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["__type"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(anyhow!("{status} {kind}"));
        }
        Ok(bytes)
    }

    /// Sends and parses the JSON answer.
    pub async fn call(&self, target: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let bytes = self.send(target, Bytes::from(body.to_string())).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}
