"""Imported key material, wrapped outside ferrokms with pyca/cryptography as a user would.

Run by tests/e2e/interop.rs against a live `ferrokms serve --dev --debug-clock`, with
FERROKMS_ENDPOINT set; exits non-zero on the first failed check.
"""
import datetime
import json
import os
import urllib.request

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
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


def wrap(key_id, material, algorithm, spec="RSA_2048"):
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
    public = serialization.load_der_public_key(params["PublicKey"])
    h = hashes.SHA256() if algorithm.endswith("256") else hashes.SHA1()
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        aes = os.urandom(32)
        wrapped = public.encrypt(aes, oaep(h)) + aes_key_wrap_with_padding(aes, material)
    else:
        wrapped = public.encrypt(material, oaep(h))
    return params, wrapped


def debug(path):
    req = urllib.request.Request(endpoint + "/ferrokms/debug/" + path, method="POST", data=b"")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


key = kms.create_key(Origin="EXTERNAL", Description="imported")["KeyMetadata"]
key_id, arn = key["KeyId"], key["Arn"]
assert key["Origin"] == "EXTERNAL" and key["KeyState"] == "PendingImport", key
assert "CurrentKeyMaterialId" not in key
message = expect_error("KMSInvalidStateException", kms.encrypt, KeyId=key_id, Plaintext=b"x")
assert message == f"{arn} is pending import.", message

material = os.urandom(32)
params, wrapped = wrap(key_id, material, "RSAES_OAEP_SHA_256")
valid_for = params["ParametersValidTo"] - datetime.datetime.now(datetime.timezone.utc)
assert datetime.timedelta(hours=23) < valid_for <= datetime.timedelta(hours=24), valid_for
message = expect_error(
    "ValidationException", kms.import_key_material,
    KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
)
assert message == "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES", message
tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
kms.import_key_material(
    KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=tomorrow,
)
meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
assert meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES", meta
assert abs((meta["ValidTo"] - tomorrow).total_seconds()) < 2, meta

sealed = kms.encrypt(KeyId=key_id, Plaintext=b"under imported material")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"under imported material"

# The same material again, wrapped the other way and made permanent: accepted.
params, wrapped = wrap(key_id, material, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
kms.import_key_material(
    KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"under imported material"
assert "ValidTo" not in kms.describe_key(KeyId=key_id)["KeyMetadata"]

# Other material, or another key's token: refused.
params, wrapped = wrap(key_id, os.urandom(32), "RSAES_OAEP_SHA_1")
expect_error(
    "IncorrectKeyMaterialException", kms.import_key_material,
    KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
other_params, other_wrapped = wrap(other, material, "RSAES_OAEP_SHA_256")
expect_error(
    "InvalidImportTokenException", kms.import_key_material,
    KeyId=key_id, ImportToken=other_params["ImportToken"], EncryptedKeyMaterial=other_wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)

# Deleting the material makes the ciphertexts unreadable until the same material returns.
kms.delete_imported_key_material(KeyId=key_id)
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=sealed)
params, wrapped = wrap(key_id, material, "RSAES_OAEP_SHA_256")
kms.import_key_material(
    KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=tomorrow,
)
assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"under imported material"

# Keys of other origins refuse import; an imported key rotates only to material imported
# for the rotation, and has none.
generated = kms.create_key()["KeyMetadata"]
message = expect_error(
    "UnsupportedOperationException", kms.get_parameters_for_import,
    KeyId=generated["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048",
)
assert message == f"{generated['Arn']} origin is AWS_KMS which is not valid for this operation.", message
message = expect_error("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key_id)
assert message == f"No available key material pending rotation for the key: {arn}.", message

# Two days later the material has expired and the expiry job removes it.
debug("advance-clock?seconds=172800")
report = debug("run-jobs")
assert report["Expired"] == 1, report
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=sealed)

print("import interop: ok")
