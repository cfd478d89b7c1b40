//! The awsJson1_1 protocol edges that an SDK never sends but other clients might.

use crate::harness::Server;

#[test]
fn unknown_and_unserved_operations() {
    let server = Server::start();
    let r = server.kms("MakeCoffee", "{}");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "UnknownOperationException");
    assert_eq!(r.message(), None);
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("UnknownOperationException")
    );
    let r = server.signed(
        "kms",
        Some("NotTrentService.ListKeys"),
        b"{}",
        std::time::SystemTime::now(),
    );
    assert_eq!(r.error_type(), "UnknownOperationException");
    let r = server.signed("kms", None, b"{}", std::time::SystemTime::now());
    assert_eq!(r.error_type(), "UnknownOperationException");
    // Every operation of the model is served and checks its input first.
    let r = server.kms("GetKeyLastUsage", "{}");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    let r = server.kms("ConnectCustomKeyStore", "{}");
    assert_eq!(r.error_type(), "ValidationException");
}

#[test]
fn every_answer_carries_a_request_id_and_the_json_content_type() {
    let server = Server::start();
    for r in [
        server.kms("ListKeys", "{}"),
        server.kms("DescribeKey", "{}"),
    ] {
        let id = r.header("x-amzn-RequestId").expect("request id");
        assert_eq!(id.len(), 36);
        assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    }
    let a = server.kms("ListKeys", "{}");
    let b = server.kms("ListKeys", "{}");
    assert_ne!(a.header("x-amzn-RequestId"), b.header("x-amzn-RequestId"));
    let empty_body = server.kms("ListKeys", "");
    assert_eq!(empty_body.status, 200, "an empty body reads as {{}}");
    assert_eq!(empty_body.json()["Keys"], serde_json::json!([]));
}

#[test]
fn malformed_bodies_and_wrong_types_are_serialization_errors() {
    let server = Server::start();
    for body in ["{not json", "[1, 2]", "\"text\""] {
        let r = server.kms("ListKeys", body);
        assert_eq!(
            (r.status, r.error_type().as_str()),
            (400, "SerializationException"),
            "{body}"
        );
    }
    let r = server.kms("GenerateRandom", r#"{"NumberOfBytes": "12"}"#);
    assert_eq!(r.error_type(), "SerializationException");
    assert_eq!(
        r.message().as_deref(),
        Some("STRING_VALUE can not be converted to an Integer")
    );
    let r = server.kms("CreateKey", r#"{"Description": {"a": 1}}"#);
    assert_eq!(r.error_type(), "SerializationException");
    assert_eq!(
        r.message().as_deref(),
        Some("Start of structure or map found where not expected.")
    );
    let r = server.kms(
        "Encrypt",
        r#"{"KeyId": "k", "Plaintext": "%%%not base64%%%"}"#,
    );
    assert_eq!(r.error_type(), "SerializationException");
}

#[test]
fn validation_errors_list_every_violation() {
    let server = Server::start();
    let r = server.kms("Encrypt", "{}");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "ValidationException");
    assert_eq!(
        r.message().as_deref(),
        Some("2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null")
    );
    let r = server.kms(
        "CreateKey",
        r#"{"KeySpec": "HMAC_random", "KeyUsage": "RANDOM"}"#,
    );
    let m = r.message().unwrap();
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    assert!(m.contains("Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, HMAC_224"), "{m}");
    assert!(m.contains("Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]"), "{m}");
    let r = server.kms("DescribeKey", r#"{"KeyId": ""}"#);
    assert_eq!(
        r.message().as_deref(),
        Some("1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1")
    );
    // Nothing was created by any of the refused requests.
    assert_eq!(
        server.kms("ListKeys", "{}").json()["Keys"],
        serde_json::json!([])
    );
}

#[test]
fn invalid_ciphertext_has_no_message_member() {
    let server = Server::start();
    let r = server.kms("Decrypt", r#"{"CiphertextBlob": "AAAA"}"#);
    assert_eq!(r.error_type(), "InvalidCiphertextException");
    assert!(r.json().get("message").is_none(), "{}", r.body);
}
