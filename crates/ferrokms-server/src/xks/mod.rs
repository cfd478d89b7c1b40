//! The XKS Proxy API (AWS's External Key Store Proxy API v1): its JSON, the client through
//! which an EXTERNAL_KEY_STORE custom key store reaches its proxy, and the proxy ferrokms
//! serves in front of a PKCS#11 token.

pub mod client;
pub mod proxy;
pub mod wire;

/// The SigV4 service name of proxy requests.
pub const SERVICE: &str = "kms-xks-proxy";
/// Where the API lives under a store's path prefix.
pub const API_PATH: &str = "/kms/xks/v1";

/// The AAD a proxy gives AES-GCM (the specification's): 2-byte big-endian length of the
/// request's AAD ‖ that AAD ‖ 1-byte length of the ciphertext metadata ‖ the metadata.
pub fn gcm_aad(aad: &[u8], metadata: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&u16::try_from(aad.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(aad);
    out.push(u8::try_from(metadata.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(metadata);
    out
}
