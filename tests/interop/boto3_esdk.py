"""Interop with the Python AWS stack: boto3, the AWS Encryption SDK and pyca/cryptography.

Run by tests/e2e/interop.rs against a live ferrokms; it reads FERROKMS_ENDPOINT and the usual
AWS_* credentials from the environment and exits non-zero on the first failed check.
"""
import os
import sys

import aws_encryption_sdk
import boto3
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

endpoint = os.environ["FERROKMS_ENDPOINT"]
# The Encryption SDK builds its own KMS clients; this points them (and ours) at ferrokms.
os.environ["AWS_ENDPOINT_URL_KMS"] = endpoint
kms = boto3.client("kms", region_name="us-east-1")

# boto3: a key, an alias, typed errors and paginators.
key = kms.create_key(Description="interop")["KeyMetadata"]
arn = key["Arn"]
kms.create_alias(AliasName="alias/interop", TargetKeyId=key["KeyId"])
for _ in range(3):
    kms.create_key()
pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}))
assert len(pages) == 4, len(pages)
assert sorted(k["KeyArn"] for p in pages for k in p["Keys"]).count(arn) == 1
try:
    kms.describe_key(KeyId="alias/missing")
    sys.exit("describe_key of a missing alias succeeded")
except kms.exceptions.NotFoundException as e:
    assert "alias/missing is not found." in e.response["Error"]["Message"]

# Envelope encryption by hand: a KMS data key used locally with pyca/cryptography.
dk = kms.generate_data_key(KeyId="alias/interop", KeySpec="AES_256", EncryptionContext={"file": "a"})
assert dk["KeyId"] == arn
nonce = os.urandom(12)
sealed = AESGCM(dk["Plaintext"]).encrypt(nonce, b"local data", None)
recovered = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"file": "a"})["Plaintext"]
assert AESGCM(recovered).decrypt(nonce, sealed, None) == b"local data"

# The AWS Encryption SDK, which insists on full key ARNs in KMS responses.
esdk = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
provider = StrictAwsKmsMasterKeyProvider(key_ids=[arn])
message, _ = esdk.encrypt(source=b"envelope payload", key_provider=provider, encryption_context={"app": "x"})
plaintext, header = esdk.decrypt(source=message, key_provider=provider)
assert plaintext == b"envelope payload"
assert header.encryption_context["app"] == "x"
tampered = bytearray(message)
tampered[-40] ^= 1
try:
    esdk.decrypt(source=bytes(tampered), key_provider=provider)
    sys.exit("a tampered Encryption SDK message decrypted")
except Exception:
    pass

print("python interop: ok")
