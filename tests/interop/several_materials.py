"""Several imported materials in one symmetric key (AWS, 2025): a pending material that
RotateKeyOnDemand makes current, ListKeyRotations with IncludeKeyMaterial, one material's
deletion and re-import, and AWS's errors. Material wrapped by pyca/cryptography.

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


def debug(path):
    req = urllib.request.Request(endpoint + "/ferrokms/debug/" + path, method="POST", data=b"")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def import_into(key_id, material, **extra):
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    public = serialization.load_der_public_key(params["PublicKey"])
    h = hashes.SHA256()
    wrapped = public.encrypt(material, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    extra.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(
        KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **extra
    )


def rotations(key_id, include=None):
    kwargs = {"IncludeKeyMaterial": include} if include else {}
    return kms.list_key_rotations(KeyId=key_id, **kwargs)["Rotations"]


key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
key_id, arn = key["KeyId"], key["Arn"]
message = expect_error("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key_id)
assert message == f"{arn} is pending import.", message

first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
message = expect_error(
    "ValidationException", import_into, key_id, first,
    ImportType="NEW_KEY_MATERIAL", KeyMaterialId="a" * 64,
)
assert "NEW_KEY_MATERIAL" in message, message
first_id = import_into(key_id, first, KeyMaterialDescription="first one")["KeyMaterialId"]
meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
assert meta["KeyState"] == "Enabled" and meta["CurrentKeyMaterialId"] == first_id, meta
sealed_first = kms.encrypt(KeyId=key_id, Plaintext=b"one")["CiphertextBlob"]

# The first material is not a rotation; with ALL_KEY_MATERIAL it is listed, CURRENT.
assert rotations(key_id) == [], rotations(key_id)
(entry,) = rotations(key_id, "ALL_KEY_MATERIAL")
assert entry["KeyMaterialId"] == first_id and entry["KeyMaterialState"] == "CURRENT", entry
assert entry["ImportState"] == "IMPORTED" and entry["KeyMaterialDescription"] == "first one", entry
assert entry["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "RotationDate" not in entry, entry

# Material the key already has is not new; new material waits for the rotation.
expect_error("IncorrectKeyMaterialException", import_into, key_id, first, ImportType="NEW_KEY_MATERIAL")
tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
second_id = import_into(
    key_id, second, ImportType="NEW_KEY_MATERIAL",
    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=tomorrow,
)["KeyMaterialId"]
assert second_id != first_id
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == first_id
pending = [r for r in rotations(key_id, "ALL_KEY_MATERIAL") if r["KeyMaterialId"] == second_id]
assert pending and pending[0]["KeyMaterialState"] == "PENDING_ROTATION", pending
message = expect_error("KMSInvalidStateException", import_into, key_id, third, ImportType="NEW_KEY_MATERIAL")
assert message.startswith("New key material (id: ") and message.endswith(
    f"cannot be imported into KMS key {key_id}, because another key material (id: {second_id}) is pending rotation."
), message

# A pending material can be deleted and replaced; the key stays usable.
assert kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=second_id)["KeyMaterialId"] == second_id
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
third_id = import_into(key_id, third, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]

# The rotation makes it current; the first stays, NON_CURRENT, and decrypts.
kms.rotate_key_on_demand(KeyId=key_id)
meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
assert meta["CurrentKeyMaterialId"] == third_id, meta
(rotated,) = rotations(key_id)
assert rotated["KeyMaterialId"] == third_id and rotated["RotationType"] == "ON_DEMAND", rotated
assert rotated["KeyMaterialState"] == "CURRENT" and "RotationDate" in rotated, rotated
states = {r["KeyMaterialId"]: r["KeyMaterialState"] for r in rotations(key_id, "ALL_KEY_MATERIAL")}
assert states == {first_id: "NON_CURRENT", third_id: "CURRENT"}, states
opened = kms.decrypt(CiphertextBlob=sealed_first)
assert opened["Plaintext"] == b"one" and opened["KeyMaterialId"] == first_id, opened
sealed_third = kms.encrypt(KeyId=key_id, Plaintext=b"three")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=sealed_third)["KeyMaterialId"] == third_id
message = expect_error("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key_id)
assert message == f"No available key material pending rotation for the key: {arn}.", message

# Deleting the non-current material leaves the key waiting for it: nothing works until
# that same material is imported again (named by its id).
kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=first_id)
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=sealed_third)
entry = [r for r in rotations(key_id, "ALL_KEY_MATERIAL") if r["KeyMaterialId"] == first_id][0]
assert entry["ImportState"] == "PENDING_IMPORT" and "ExpirationModel" not in entry, entry
expect_error(
    "IncorrectKeyMaterialException", import_into, key_id, second,
    ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=first_id,
)
expect_error("IncorrectKeyMaterialException", import_into, key_id, os.urandom(32))
import_into(key_id, first, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=first_id)
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
assert kms.decrypt(CiphertextBlob=sealed_first)["Plaintext"] == b"one"
entry = [r for r in rotations(key_id, "ALL_KEY_MATERIAL") if r["KeyMaterialId"] == first_id][0]
assert entry["KeyMaterialDescription"] == "first one", entry

# Material of another key, named by a foreign id: not associated.
message = expect_error(
    "NotFoundException", kms.delete_imported_key_material, KeyId=key_id, KeyMaterialId="0" * 64
)

# A pending material expires by itself; the key stays usable.
fourth_id = import_into(
    key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL",
    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=tomorrow,
)["KeyMaterialId"]
debug("advance-clock?seconds=172800")
report = debug("run-jobs")
assert report["Expired"] == 1, report
assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
assert fourth_id not in {r["KeyMaterialId"] for r in rotations(key_id, "ALL_KEY_MATERIAL")}
assert kms.decrypt(CiphertextBlob=sealed_third)["Plaintext"] == b"three"

# A multi-Region key of imported material: its replica waits for the same material, which
# a new material cannot be (ferrokms does not rotate imported multi-Region keys yet).
primary = kms.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]
shared = os.urandom(32)
import_into(primary["KeyId"], shared)
sealed_east = kms.encrypt(KeyId=primary["KeyId"], Plaintext=b"east")["CiphertextBlob"]
replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")["ReplicaKeyMetadata"]
assert replica["KeyState"] == "PendingImport" and "CurrentKeyMaterialId" not in replica, replica
west = boto3.client("kms", endpoint_url=endpoint, region_name="eu-west-1")
kms_east = kms
kms = west
expect_error("IncorrectKeyMaterialException", import_into, primary["KeyId"], os.urandom(32))
import_into(primary["KeyId"], shared)
assert west.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
assert west.decrypt(CiphertextBlob=sealed_east)["Plaintext"] == b"east"
kms = kms_east
expect_error("UnsupportedOperationException", import_into, primary["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")

print("several materials: ok")
