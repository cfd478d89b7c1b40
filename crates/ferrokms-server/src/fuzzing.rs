//! Entry points for the fuzz targets in `fuzz/`: the parsers of what clients send, reachable
//! without a running server. Not an API; nothing here keeps state.

use ferrokms_core::key::{KeySpec, SigningAlgorithm};

use crate::sigv4::{parse_amz_date, AuthorizationHeader};
use crate::wire::{decode_marker, Input};

/// A request body through the JSON decoder and every kind of member reader the operations
/// use (strings, blobs, maps, lists, integers, enums, tags, timestamps, booleans).
pub fn request_body(body: &[u8]) {
    let Ok(mut input) = Input::parse(body) else {
        return;
    };
    let _ = input.string("KeyId", 1, 2048);
    let _ = input.blob("Plaintext", 1, 4096);
    let _ = input.blob("CiphertextBlob", 1, 6144);
    let _ = input.string_map("EncryptionContext");
    let _ = input.string_list("GrantTokens", 1, 8192, 10);
    let _ = input.integer("NumberOfBytes", 1, 1024);
    let _ = input.enumeration("KeySpec", KeySpec::parse, KeySpec::ALL);
    let _ = input.enumeration(
        "SigningAlgorithm",
        SigningAlgorithm::parse,
        SigningAlgorithm::ALL,
    );
    let _ = input.tags("Tags");
    let _ = input.timestamp("ValidTo");
    let _ = input.boolean("DryRun");
    let _ = input.string("Policy", 1, 131_072);
    if let Ok(Some(marker)) = input.string("Marker", 1, 1024) {
        let _ = decode_marker(Some(&marker));
    }
    let _ = input.raw("Constraints");
    let _ = input.finish();
}

/// An `Authorization` header (with and without a date header) and an `X-Amz-Date` value.
pub fn authorization_header(raw: &str) {
    let _ = AuthorizationHeader::parse(raw, true);
    let _ = AuthorizationHeader::parse(raw, false);
    let _ = parse_amz_date(raw);
}

/// Every KMS operation's request decoding and validation, run for real: the operation's
/// handler over an SQLite store of its own, called as an account's root in dev mode.
pub struct Operations {
    runtime: tokio::runtime::Runtime,
    services: crate::api::Services,
    request: crate::sigv4::VerifiedRequest,
}

impl Operations {
    /// A fresh store in a new directory under the system's temporary folder (left there,
    /// for a fuzzing run is short-lived).
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let name: [u8; 8] = ferrokms_core::random::array().expect("random");
        let dir = std::env::temp_dir().join(format!(
            "ferrokms-fuzz-{}",
            name.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        std::fs::create_dir_all(&dir).expect("a directory");
        let (services, request) = runtime.block_on(async {
            let store = ferrokms_store::SqlStore::open_sqlite(&dir.join("ferrokms.db"))
                .await
                .expect("a store")
                .cache_reads();
            let store: std::sync::Arc<dyn ferrokms_store::Store> = std::sync::Arc::new(store);
            let root_bytes = ferrokms_core::random::secret_bytes(32).expect("random");
            let root = ferrokms_core::material::AesRootKey::from_bytes(&root_bytes).expect("key");
            let services = crate::api::Services {
                store: store.clone(),
                root: std::sync::Arc::new(root),
                quotas: std::sync::Arc::new(crate::quotas::Quotas::new(Default::default(), true)),
                materials: Default::default(),
                key_stores: Default::default(),
                // Fuzzed inputs name arbitrary proxy hosts: none is ever dialled.
                xks: std::sync::Arc::new(
                    crate::xks::client::XksClient::offline().expect("xks client"),
                ),
                regions: Default::default(),
            };
            let auth = crate::sigv4::Authenticator::Dev {
                default_account: ferrokms_core::ids::AccountId::parse("111122223333")
                    .expect("account"),
                store,
            };
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                "authorization",
                axum::http::HeaderValue::from_static(
                    "AWS4-HMAC-SHA256 Credential=111122223333/20260101/us-east-1/kms/aws4_request, \
                     SignedHeaders=host, Signature=00",
                ),
            );
            headers.insert(
                "x-amz-date",
                axum::http::HeaderValue::from_static("20260101T000000Z"),
            );
            let parts = crate::sigv4::RequestParts {
                method: &axum::http::Method::POST,
                authority: None,
                path: "/",
                query: None,
                headers: &headers,
                body: b"",
            };
            let request = auth
                .authenticate(
                    &parts,
                    std::time::SystemTime::now(),
                    &crate::regions::Regions::default(),
                )
                .await
                .expect("dev mode accepts any signature");
            (services, request)
        });
        Operations {
            runtime,
            services,
            request,
        }
    }

    /// The first byte picks the operation; the rest is its JSON body.
    pub fn run(&self, data: &[u8]) {
        let Some((&which, body)) = data.split_first() else {
            return;
        };
        let operations = crate::api::operations::OPERATIONS;
        let operation = &operations[usize::from(which) % operations.len()];
        let Ok(input) = Input::parse(body) else {
            return;
        };
        let make = || ferrokms_store::Intent::unkept(fuzz_record());
        let audit = crate::audit::PendingIntent::new(&make);
        let call = crate::api::Call {
            services: &self.services,
            request: &self.request,
            audit: &audit,
            operation,
            now: 1_767_225_600_000,
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            secure_transport: false,
            resources: Default::default(),
            decided: Default::default(),
        };
        let _ = self.runtime.block_on(crate::api::dispatch(&call, input));
    }
}

/// The record the fuzzed calls' writes carry (kept nowhere).
fn fuzz_record() -> ferrokms_store::AuditRecord {
    crate::audit::event::operator_event(
        crate::audit::event::ChangeSource::AdminCommand,
        "kms.amazonaws.com",
        "Fuzz",
        "",
        serde_json::Value::Null,
        ("", ""),
        0,
    )
    .record
}

impl Default for Operations {
    fn default() -> Self {
        Self::new()
    }
}
