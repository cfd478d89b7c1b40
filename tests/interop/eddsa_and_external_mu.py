"""Ed25519 keys and data key pairs (ED25519_SHA_512, ED25519_PH_SHA_512) and ML-DSA with
an external mu, checked by pyca/cryptography and by computing mu here as FIPS 204 says.

Run by tests/e2e/interop.rs against a live `ferrokms serve --dev`, with FERROKMS_ENDPOINT
set; exits non-zero on the first failed check.
"""
import hashlib
import os

import boto3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

endpoint = os.environ["FERROKMS_ENDPOINT"]
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")


def expect_error(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except kms.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e.response["Error"].get("Message", "")
    raise SystemExit(f"expected {code}, but the call succeeded")


message = b"an Edwards-curve message"

key = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
assert key["SigningAlgorithms"] == ["ED25519_SHA_512", "ED25519_PH_SHA_512"], key
key_id = key["KeyId"]
public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
assert isinstance(public, ed25519.Ed25519PublicKey)

sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm="ED25519_SHA_512")["Signature"]
assert len(sig) == 64
public.verify(sig, message)
assert kms.verify(KeyId=key_id, Message=message, Signature=sig, SigningAlgorithm="ED25519_SHA_512")["SignatureValid"]
expect_error(
    "KMSInvalidSignatureException", kms.verify,
    KeyId=key_id, Message=message + b"!", Signature=sig, SigningAlgorithm="ED25519_SHA_512",
)
# The two algorithms' message types are not interchangeable.
digest = hashlib.sha512(message).digest()
expect_error(
    "ValidationException", kms.sign,
    KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_SHA_512",
)
text = expect_error(
    "ValidationException", kms.sign, KeyId=key_id, Message=message, SigningAlgorithm="ED25519_PH_SHA_512"
)
assert "DIGEST" in text, text
expect_error(
    "ValidationException", kms.sign,
    KeyId=key_id, Message=digest[:32], MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512",
)
ph = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
assert len(ph) == 64 and ph != sig
assert kms.verify(
    KeyId=key_id, Message=digest, MessageType="DIGEST", Signature=ph, SigningAlgorithm="ED25519_PH_SHA_512"
)["SignatureValid"]
# HashEdDSA is not pure Ed25519 of the same bytes.
try:
    public.verify(ph, digest)
    raise SystemExit("an Ed25519ph signature verified as pure Ed25519")
except Exception as e:  # cryptography raises InvalidSignature
    assert type(e).__name__ == "InvalidSignature", e
expect_error(
    "KMSInvalidSignatureException", kms.verify,
    KeyId=key_id, Message=bytes(64), MessageType="DIGEST", Signature=ph, SigningAlgorithm="ED25519_PH_SHA_512",
)
expect_error(
    "ValidationException", kms.create_key, KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="KEY_AGREEMENT"
)

# Data key pairs of the spec: the private key is PKCS#8 that pyca reads, and matches.
wrapping = kms.create_key()["KeyMetadata"]["KeyId"]
pair = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec="ECC_NIST_EDWARDS25519")
private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
assert isinstance(private, ed25519.Ed25519PrivateKey)
assert private.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
) == pair["PublicKey"]
opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"]
assert opened == pair["PrivateKeyPlaintext"]
no_plain = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec="ECC_NIST_EDWARDS25519")
assert "PrivateKeyPlaintext" not in no_plain and len(no_plain["PublicKey"]) == 44

# ML-DSA with an external mu: mu = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64)
# (FIPS 204, empty context). Signatures over mu are ML-DSA signatures of M.
for spec, pk_len in [("ML_DSA_44", 1312), ("ML_DSA_65", 1952), ("ML_DSA_87", 2592)]:
    ml = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    pk = kms.get_public_key(KeyId=ml)["PublicKey"][-pk_len:]
    tr = hashlib.shake_256(pk).digest(64)
    mu = hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)
    over_mu = kms.sign(KeyId=ml, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert kms.verify(KeyId=ml, Message=message, Signature=over_mu, SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"]
    raw = kms.sign(KeyId=ml, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    assert kms.verify(
        KeyId=ml, Message=mu, MessageType="EXTERNAL_MU", Signature=raw, SigningAlgorithm="ML_DSA_SHAKE_256"
    )["SignatureValid"]
    other_mu = hashlib.shake_256(tr + b"\x00\x00" + message + b"!").digest(64)
    expect_error(
        "KMSInvalidSignatureException", kms.verify,
        KeyId=ml, Message=other_mu, MessageType="EXTERNAL_MU", Signature=raw, SigningAlgorithm="ML_DSA_SHAKE_256",
    )
    expect_error(
        "ValidationException", kms.sign,
        KeyId=ml, Message=mu[:63], MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256",
    )
    expect_error(
        "ValidationException", kms.sign,
        KeyId=ml, Message=mu, MessageType="DIGEST", SigningAlgorithm="ML_DSA_SHAKE_256",
    )

ecdsa = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
text = expect_error(
    "ValidationException", kms.sign,
    KeyId=ecdsa, Message=bytes(64), MessageType="EXTERNAL_MU", SigningAlgorithm="ECDSA_SHA_256",
)
assert "EXTERNAL_MU" in text, text

print("eddsa and external mu: ok")
