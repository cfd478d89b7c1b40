"""Checks ferrokms's asymmetric keys with an independent implementation, pyca/cryptography.

Run by tests/e2e/interop.rs against a live ferrokms with FERROKMS_ENDPOINT and AWS_*
credentials set; exits non-zero on the first failed check.
"""
import hashlib
import os

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

kms = boto3.client("kms", endpoint_url=os.environ["FERROKMS_ENDPOINT"], region_name="us-east-1")


def create(spec, usage):
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]


def public_key(key_id):
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


message = b"signed by ferrokms, checked by pyca/cryptography"
HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}

# RSA: every algorithm, RAW and DIGEST. PSS must use a salt as long as the digest.
rsa_id = create("RSA_3072", "SIGN_VERIFY")
rsa_public = public_key(rsa_id)
for alg in kms.describe_key(KeyId=rsa_id)["KeyMetadata"]["SigningAlgorithms"]:
    h = HASHES[alg[-3:]]
    digest = hashlib.new(h.name, message).digest()
    for message_type, payload in (("RAW", message), ("DIGEST", digest)):
        sig = kms.sign(KeyId=rsa_id, Message=payload, MessageType=message_type, SigningAlgorithm=alg)["Signature"]
        if alg.startswith("RSASSA_PSS"):
            pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        else:
            pad = padding.PKCS1v15()
        rsa_public.verify(sig, message, pad, h)  # raises InvalidSignature on failure

# ECDSA on every curve: DER signatures over the message hashed once.
for spec, alg, h in (
    ("ECC_NIST_P256", "ECDSA_SHA_256", hashes.SHA256()),
    ("ECC_NIST_P384", "ECDSA_SHA_384", hashes.SHA384()),
    ("ECC_NIST_P521", "ECDSA_SHA_512", hashes.SHA512()),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256", hashes.SHA256()),
):
    key_id = create(spec, "SIGN_VERIFY")
    sig = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=alg)["Signature"]
    public_key(key_id).verify(sig, message, ec.ECDSA(h))
    # And a signature made outside fails Verify in ferrokms only when it is wrong.
    try:
        kms.verify(KeyId=key_id, Message=message + b"!", Signature=sig, SigningAlgorithm=alg)
        raise SystemExit(f"{spec}: a signature over another message verified")
    except kms.exceptions.KMSInvalidSignatureException:
        pass

# RSA-OAEP: encrypted outside with the public key, decrypted inside.
enc_id = create("RSA_2048", "ENCRYPT_DECRYPT")
enc_public = public_key(enc_id)
for alg, h in (("RSAES_OAEP_SHA_1", hashes.SHA1()), ("RSAES_OAEP_SHA_256", hashes.SHA256())):
    ct = enc_public.encrypt(b"sealed outside", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    out = kms.decrypt(KeyId=enc_id, CiphertextBlob=ct, EncryptionAlgorithm=alg)
    assert out["Plaintext"] == b"sealed outside", alg

# ECDH: the secret ferrokms derives equals the one computed outside.
agree_id = create("ECC_NIST_P384", "KEY_AGREEMENT")
peer = ec.generate_private_key(ec.SECP384R1())
peer_spki = peer.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
inside = kms.derive_shared_secret(KeyId=agree_id, KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki)["SharedSecret"]
outside = peer.exchange(ec.ECDH(), public_key(agree_id))
assert inside == outside

# GenerateDataKeyPair: the plaintext private key is PKCS#8 and matches the public key.
wrapping = kms.create_key()["KeyMetadata"]["KeyId"]
for spec in ("RSA_2048", "ECC_NIST_P521"):
    pair = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec=spec)
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
    derived = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert derived == pair["PublicKey"], spec

print("asymmetric interop: ok")
