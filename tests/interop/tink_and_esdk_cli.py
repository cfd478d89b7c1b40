"""Tink (tink[awskms]) and the AWS Encryption SDK CLI (aws-encryption-cli) against a real
strict-mode ferrokms, as they are used: Tink's envelope AEAD with a KMS key as the key
encryption key, and the CLI encrypting and decrypting a file. Each also meets one refusal.
Both reach ferrokms through botocore's AWS_ENDPOINT_URL_KMS, which tests/e2e/interop.rs sets
with the admin's credentials."""

import os
import subprocess
import sys
import tempfile

import boto3
import tink
from tink import aead
from tink.integration import awskms

kms = boto3.client("kms", endpoint_url=os.environ["AWS_ENDPOINT_URL_KMS"])
key_arn = kms.create_key(Description="tink interop")["KeyMetadata"]["Arn"]
other_arn = kms.create_key(Description="tink interop, other")["KeyMetadata"]["Arn"]

# Tink: a KMS envelope AEAD whose key encryption key is the ferrokms key.
aead.register()
client = awskms.AwsKmsClient(f"aws-kms://{key_arn}", None)
remote = client.get_aead(f"aws-kms://{key_arn}")
envelope = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, remote)
sealed = envelope.encrypt(b"hello from tink", b"associated")
assert envelope.decrypt(sealed, b"associated") == b"hello from tink"
try:
    envelope.decrypt(sealed, b"other associated data")
    sys.exit("tink decrypted with the wrong associated data")
except tink.TinkError:
    pass
# The remote AEAD alone: its ciphertext is a ferrokms ciphertext.
blob = remote.encrypt(b"direct", b"ad")
assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"associatedData": "6164"})["Plaintext"] == b"direct"

# The Encryption SDK CLI: a file encrypted under the key, decrypted back.
with tempfile.TemporaryDirectory() as d:
    plain = os.path.join(d, "plain.txt")
    sealed_file = os.path.join(d, "plain.txt.encrypted")
    back = os.path.join(d, "back.txt")
    with open(plain, "w") as f:
        f.write("a file for the Encryption SDK CLI\n")
    common = ["--commitment-policy", "require-encrypt-require-decrypt", "-S"]
    subprocess.run(
        ["aws-encryption-cli", "--encrypt", "-i", plain, "-o", sealed_file,
         "--wrapping-keys", f"key={key_arn}", "--encryption-context", "purpose=interop",
         ] + common,
        check=True, stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["aws-encryption-cli", "--decrypt", "-i", sealed_file, "-o", back,
         "--wrapping-keys", f"key={key_arn}", "--encryption-context", "purpose=interop",
         ] + common,
        check=True, stdout=subprocess.DEVNULL,
    )
    with open(back) as f:
        assert f.read() == "a file for the Encryption SDK CLI\n"
    # Decrypting with only the other key as a wrapping key fails.
    refused = subprocess.run(
        ["aws-encryption-cli", "--decrypt", "-i", sealed_file, "-o", os.path.join(d, "no.txt"),
         "--wrapping-keys", f"key={other_arn}"] + common,
        capture_output=True, text=True,
    )
    assert refused.returncode != 0, refused

print("tink and encryption sdk cli interop: ok")
