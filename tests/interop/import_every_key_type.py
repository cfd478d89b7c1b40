"""Imported material of every key type AWS imports (RSA, ECC, Ed25519, HMAC), made and
wrapped by pyca/cryptography, then used through boto3 and checked by pyca again.

Run by tests/e2e/interop.rs against a live `ferrokms serve --dev`, with FERROKMS_ENDPOINT
set; exits non-zero on the first failed check.
"""
import hashlib
import hmac
import os

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

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


def oaep(h):
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def wrap(key_id, material, algorithm, spec):
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    public = serialization.load_der_public_key(params["PublicKey"])
    h = hashes.SHA256() if algorithm.endswith("256") else hashes.SHA1()
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        aes = os.urandom(32)
        wrapped = public.encrypt(aes, oaep(h)) + aes_key_wrap_with_padding(aes, material)
    else:
        wrapped = public.encrypt(material, oaep(h))
    return params["ImportToken"], wrapped


def import_into(key_id, material, algorithm="RSA_AES_KEY_WRAP_SHA_256", spec="RSA_4096", **extra):
    token, wrapped = wrap(key_id, material, algorithm, spec)
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=token,
        EncryptedKeyMaterial=wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        **extra,
    )


def pkcs8(private):
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def spki(public):
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def external_key(spec, usage):
    meta = kms.create_key(Origin="EXTERNAL", KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport" and meta["Origin"] == "EXTERNAL", meta
    assert "CurrentKeyMaterialId" not in meta, meta
    expect_error("KMSInvalidStateException", kms.get_public_key, KeyId=meta["KeyId"])
    return meta["KeyId"]


message = b"signed by imported material"

# RSA, every size, both usages; the private key needs RSA-AES key wrap.
for bits, spec, wrapping_spec, algorithm in [
    (2048, "RSA_2048", "RSA_2048", "RSA_AES_KEY_WRAP_SHA_1"),
    (3072, "RSA_3072", "RSA_3072", "RSA_AES_KEY_WRAP_SHA_256"),
    (4096, "RSA_4096", "RSA_4096", "RSA_AES_KEY_WRAP_SHA_256"),
]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    signing = external_key(spec, "SIGN_VERIFY")
    # RSAES-OAEP cannot carry an RSA private key: the wrapped material does not decrypt.
    params = kms.get_parameters_for_import(
        KeyId=signing, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_4096"
    )
    expect_error(
        "InvalidCiphertextException", kms.import_key_material,
        KeyId=signing, ImportToken=params["ImportToken"], EncryptedKeyMaterial=os.urandom(512),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    import_into(signing, pkcs8(private), algorithm, wrapping_spec)
    meta = kms.describe_key(KeyId=signing)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and "CurrentKeyMaterialId" not in meta, meta
    assert kms.get_public_key(KeyId=signing)["PublicKey"] == spki(private.public_key())
    sig = kms.sign(KeyId=signing, Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    private.public_key().verify(
        sig, message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256(),
    )

    encrypting = external_key(spec, "ENCRYPT_DECRYPT")
    import_into(encrypting, pkcs8(private), algorithm, wrapping_spec)
    sealed = private.public_key().encrypt(b"for the imported key", oaep(hashes.SHA256()))
    opened = kms.decrypt(KeyId=encrypting, CiphertextBlob=sealed, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert opened["Plaintext"] == b"for the imported key"
    assert "KeyMaterialId" not in opened, opened

# A key of another size or kind is not this key's material.
wrong = external_key("RSA_2048", "SIGN_VERIFY")
message_text = expect_error(
    "IncorrectKeyMaterialException", import_into, wrong,
    pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=3072)),
)
assert "RSA_2048" in message_text, message_text
expect_error(
    "IncorrectKeyMaterialException", import_into, wrong, pkcs8(ec.generate_private_key(ec.SECP256R1()))
)

# ECC signing keys on every curve, both wrapping algorithms (OAEP carries a small key).
for curve, spec, sign_alg, h in [
    (ec.SECP256R1(), "ECC_NIST_P256", "ECDSA_SHA_256", hashes.SHA256()),
    (ec.SECP384R1(), "ECC_NIST_P384", "ECDSA_SHA_384", hashes.SHA384()),
    (ec.SECP521R1(), "ECC_NIST_P521", "ECDSA_SHA_512", hashes.SHA512()),
    (ec.SECP256K1(), "ECC_SECG_P256K1", "ECDSA_SHA_256", hashes.SHA256()),
]:
    private = ec.generate_private_key(curve)
    key_id = external_key(spec, "SIGN_VERIFY")
    algorithm = "RSA_AES_KEY_WRAP_SHA_256" if spec == "ECC_NIST_P521" else "RSAES_OAEP_SHA_256"
    import_into(key_id, pkcs8(private), algorithm, "RSA_3072")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private.public_key())
    sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=sign_alg)["Signature"]
    private.public_key().verify(sig, message, ec.ECDSA(h))
    # A signature pyca made verifies in KMS.
    local = private.sign(message, ec.ECDSA(h))
    assert kms.verify(KeyId=key_id, Message=message, Signature=local, SigningAlgorithm=sign_alg)["SignatureValid"]

# The material is fixed: the same key again is accepted, another one refused.
again = ec.generate_private_key(ec.SECP384R1())
fixed = external_key("ECC_NIST_P384", "SIGN_VERIFY")
first = import_into(fixed, pkcs8(again))
second = import_into(fixed, pkcs8(again))
assert first["KeyMaterialId"] == second["KeyMaterialId"], (first, second)
expect_error(
    "IncorrectKeyMaterialException", import_into, fixed, pkcs8(ec.generate_private_key(ec.SECP384R1()))
)
message_text = expect_error(
    "ValidationException", import_into, fixed, pkcs8(again), ImportType="EXISTING_KEY_MATERIAL"
)
assert "only usable with symmetric encryption keys" in message_text, message_text
kms.delete_imported_key_material(KeyId=fixed)
assert kms.describe_key(KeyId=fixed)["KeyMetadata"]["KeyState"] == "PendingImport"
expect_error("KMSInvalidStateException", kms.sign, KeyId=fixed, Message=message, SigningAlgorithm="ECDSA_SHA_384")
import_into(fixed, pkcs8(again))
assert kms.get_public_key(KeyId=fixed)["PublicKey"] == spki(again.public_key())

# A key agreement key: ECDH with a peer pyca holds.
private = ec.generate_private_key(ec.SECP256R1())
agreeing = external_key("ECC_NIST_P256", "KEY_AGREEMENT")
import_into(agreeing, pkcs8(private))
peer = ec.generate_private_key(ec.SECP256R1())
shared = kms.derive_shared_secret(
    KeyId=agreeing, KeyAgreementAlgorithm="ECDH", PublicKey=spki(peer.public_key())
)["SharedSecret"]
assert shared == peer.exchange(ec.ECDH(), private.public_key())

# Ed25519.
private = ed25519.Ed25519PrivateKey.generate()
edwards = external_key("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
import_into(edwards, pkcs8(private), "RSAES_OAEP_SHA_1", "RSA_2048")
assert kms.get_public_key(KeyId=edwards)["PublicKey"] == spki(private.public_key())
sig = kms.sign(KeyId=edwards, Message=message, SigningAlgorithm="ED25519_SHA_512")["Signature"]
private.public_key().verify(sig, message)

# HMAC keys: at least the hash length, at most 1024 bits.
for spec, mac_alg, digest, minimum in [
    ("HMAC_224", "HMAC_SHA_224", hashlib.sha224, 28),
    ("HMAC_256", "HMAC_SHA_256", hashlib.sha256, 32),
    ("HMAC_384", "HMAC_SHA_384", hashlib.sha384, 48),
    ("HMAC_512", "HMAC_SHA_512", hashlib.sha512, 64),
]:
    key_id = external_key(spec, "GENERATE_VERIFY_MAC")
    message_text = expect_error("IncorrectKeyMaterialException", import_into, key_id, os.urandom(minimum - 1))
    assert message_text == f"{spec} key material must be {minimum} to 128 bytes long.", message_text
    expect_error("IncorrectKeyMaterialException", import_into, key_id, os.urandom(129))
    secret = os.urandom(minimum + 7)
    import_into(key_id, secret, "RSAES_OAEP_SHA_256", "RSA_2048")
    mac = kms.generate_mac(KeyId=key_id, Message=message, MacAlgorithm=mac_alg)["Mac"]
    assert mac == hmac.new(secret, message, digest).digest()
    assert kms.verify_mac(KeyId=key_id, Message=message, MacAlgorithm=mac_alg, Mac=mac)["MacValid"]

# ML-DSA material cannot be imported, as in AWS.
message_text = expect_error(
    "UnsupportedOperationException", kms.create_key,
    Origin="EXTERNAL", KeySpec="ML_DSA_65", KeyUsage="SIGN_VERIFY",
)
assert message_text == "You can't import key material for ML_DSA_65 KMS keys.", message_text

print("import every key type: ok")
