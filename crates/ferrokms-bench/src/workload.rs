//! The workloads: the keys each needs, and the request it repeats.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::client::Signer;

pub const NAMES: &[&str] = &[
    "encrypt-64",
    "encrypt-4k",
    "decrypt-4k",
    "generate-data-key",
    "sign-ecc-p256",
    "sign-rsa-2048",
    "generate-mac",
    "create-key",
    "describe-key",
];

#[derive(Clone)]
pub struct Workload {
    target: &'static str,
    /// Requests are taken from these in turn.
    bodies: Arc<Vec<Bytes>>,
    /// The size of one answer, for the ceiling to match.
    pub response_bytes: usize,
}

impl Workload {
    pub fn request(&self, n: usize) -> (&'static str, Bytes) {
        (self.target, self.bodies[n % self.bodies.len()].clone())
    }

    /// Makes the keys the workload needs on `signer`'s endpoint.
    pub async fn prepare(
        name: &str,
        signer: &Signer,
        keys: usize,
        connections: usize,
        existing_key: Option<&str>,
    ) -> Result<Workload> {
        let b64 = |n: usize| BASE64.encode(vec![0x5a; n]);
        let symmetric_key = || async {
            match existing_key {
                Some(k) => Ok(k.to_owned()),
                None => create_key(signer, json!({})).await,
            }
        };
        let (target, bodies): (&'static str, Vec<Value>) = match name {
            "encrypt-64" | "encrypt-4k" => {
                let size = if name == "encrypt-64" { 64 } else { 4096 };
                let key = symmetric_key().await?;
                (
                    "Encrypt",
                    vec![json!({"KeyId": key, "Plaintext": b64(size)})],
                )
            }
            "decrypt-4k" => {
                let key = symmetric_key().await?;
                let out = signer
                    .call("Encrypt", json!({"KeyId": key, "Plaintext": b64(4096)}))
                    .await?;
                (
                    "Decrypt",
                    vec![json!({"CiphertextBlob": out["CiphertextBlob"]})],
                )
            }
            "generate-data-key" => {
                let key = symmetric_key().await?;
                (
                    "GenerateDataKey",
                    vec![json!({"KeyId": key, "KeySpec": "AES_256"})],
                )
            }
            "sign-ecc-p256" | "sign-rsa-2048" => {
                let (spec, algorithm) = if name == "sign-ecc-p256" {
                    ("ECC_NIST_P256", "ECDSA_SHA_256")
                } else {
                    ("RSA_2048", "RSASSA_PSS_SHA_256")
                };
                let key =
                    create_key(signer, json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"})).await?;
                let body = json!({"KeyId": key, "Message": b64(32), "MessageType": "RAW",
                                  "SigningAlgorithm": algorithm});
                ("Sign", vec![body])
            }
            "generate-mac" => {
                let key = create_key(
                    signer,
                    json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
                )
                .await?;
                let body =
                    json!({"KeyId": key, "Message": b64(64), "MacAlgorithm": "HMAC_SHA_256"});
                ("GenerateMac", vec![body])
            }
            "create-key" => ("CreateKey", vec![json!({})]),
            "describe-key" => {
                // Keys made by an earlier run count, so that a store filled once can be
                // measured again (after a restart, say) without growing.
                let mut ids = existing_keys(signer, keys.max(1)).await?;
                let missing = keys.max(1).saturating_sub(ids.len());
                if missing > 0 {
                    ids.extend(create_keys(signer, missing, connections).await?);
                }
                let bodies = ids.into_iter().map(|id| json!({"KeyId": id})).collect();
                ("DescribeKey", bodies)
            }
            other => return Err(anyhow!("unknown workload {other}")),
        };
        let bodies: Vec<Bytes> = bodies
            .into_iter()
            .map(|b| Bytes::from(b.to_string()))
            .collect();
        let response_bytes = signer.send(target, bodies[0].clone()).await?.len();
        Ok(Workload {
            target,
            bodies: Arc::new(bodies),
            response_bytes,
        })
    }
}

async fn create_key(signer: &Signer, body: Value) -> Result<String> {
    let out = signer.call("CreateKey", body).await?;
    out["KeyMetadata"]["Arn"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("CreateKey answered without an ARN"))
}

/// Up to `n` of the keys the caller already has, by ListKeys.
async fn existing_keys(signer: &Signer, n: usize) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    while ids.len() < n {
        let mut body = json!({ "Limit": 1000 });
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let out = signer.call("ListKeys", body).await?;
        let page = out["Keys"].as_array().cloned().unwrap_or_default();
        ids.extend(
            page.iter()
                .filter_map(|k| k["KeyArn"].as_str().map(str::to_owned))
                .take(n - ids.len()),
        );
        match out["NextMarker"].as_str() {
            Some(m) if out["Truncated"].as_bool() == Some(true) => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    Ok(ids)
}

/// Makes `n` symmetric keys from `connections` workers.
async fn create_keys(signer: &Signer, n: usize, connections: usize) -> Result<Vec<String>> {
    let workers = connections.clamp(1, n);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let signer = signer.clone();
        let count = n / workers + usize::from(w < n % workers);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(create_key(&signer, json!({})).await?);
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}
