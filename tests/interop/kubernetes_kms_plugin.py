"""The Kubernetes KMS v2 plugin, called as the kube-apiserver calls it: gRPC over its Unix
socket, with stubs that grpcio-tools (PyPI) generates here from the plugin's proto. boto3
plays the operator who rotates and disables the key.

Environment (tests/e2e/kubernetes.rs sets it): PLUGIN_SOCKET, PLUGIN_PROTO (the .proto
file), KEY_ID, FERROKMS_ENDPOINT and the admin's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
"""

import os
import subprocess
import sys
import tempfile
import time

import boto3
import grpc

socket_path = os.environ["PLUGIN_SOCKET"]
proto = os.environ["PLUGIN_PROTO"]
key_id = os.environ["KEY_ID"]

stubs = tempfile.mkdtemp()
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{os.path.dirname(proto)}",
     f"--python_out={stubs}", f"--grpc_python_out={stubs}", os.path.basename(proto)],
    check=True,
)
sys.path.insert(0, stubs)
import kms_v2_pb2 as pb  # noqa: E402
import kms_v2_pb2_grpc as rpc  # noqa: E402

# The authority grpc-go (the kube-apiserver's gRPC) sends on a Unix socket; grpcio's default,
# the socket's path, is not a valid HTTP/2 authority and the server resets such streams.
channel = grpc.insecure_channel(f"unix://{socket_path}", options=[("grpc.default_authority", "localhost")])
plugin = rpc.KeyManagementServiceStub(channel)
kms = boto3.client("kms", endpoint_url=os.environ["FERROKMS_ENDPOINT"], region_name="us-east-1")


def status():
    return plugin.Status(pb.StatusRequest(), timeout=30)


def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("the call succeeded")


# Status: healthy, API v2, and a key id (the current material's).
first = status()
assert first.version == "v2", first
assert first.healthz == "ok", first
assert len(first.key_id) == 64, first.key_id

# Encrypt a DEK seed as the API server does; the key id is the same material's.
seed = os.urandom(32)
sealed = plugin.Encrypt(pb.EncryptRequest(plaintext=seed, uid="uid-1"), timeout=30)
assert sealed.key_id == first.key_id, (sealed.key_id, first.key_id)
assert seed not in sealed.ciphertext
opened = plugin.Decrypt(
    pb.DecryptRequest(ciphertext=sealed.ciphertext, uid="uid-2", key_id=sealed.key_id), timeout=30
)
assert opened.plaintext == seed

# A changed ciphertext, or one stored with another key id, is refused.
changed = bytearray(sealed.ciphertext)
changed[-1] ^= 1
code, details = code_of(lambda: plugin.Decrypt(
    pb.DecryptRequest(ciphertext=bytes(changed), uid="uid-3", key_id=sealed.key_id), timeout=30))
assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
code, details = code_of(lambda: plugin.Decrypt(
    pb.DecryptRequest(ciphertext=sealed.ciphertext, uid="uid-4", key_id="0" * 64), timeout=30))
assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
assert "not " in details, details
code, details = code_of(lambda: plugin.Decrypt(
    pb.DecryptRequest(ciphertext=b"not a ciphertext", uid="uid-5", key_id=sealed.key_id), timeout=30))
assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)

# Rotation: the key id changes, so the API server re-seals; the old ciphertext still opens.
kms.rotate_key_on_demand(KeyId=key_id)
deadline = time.time() + 60
rotated = status()
while rotated.key_id == first.key_id and time.time() < deadline:
    time.sleep(0.5)
    rotated = status()
assert rotated.healthz == "ok", rotated
assert rotated.key_id != first.key_id, "the key id did not change after rotation"
resealed = plugin.Encrypt(pb.EncryptRequest(plaintext=seed, uid="uid-6"), timeout=30)
assert resealed.key_id == rotated.key_id
old = plugin.Decrypt(
    pb.DecryptRequest(ciphertext=sealed.ciphertext, uid="uid-7", key_id=sealed.key_id), timeout=30
)
assert old.plaintext == seed
new = plugin.Decrypt(
    pb.DecryptRequest(ciphertext=resealed.ciphertext, uid="uid-8", key_id=resealed.key_id), timeout=30
)
assert new.plaintext == seed

# A disabled key: Status says so (the API server's healthz fails with it), Encrypt is refused.
kms.disable_key(KeyId=key_id)
unhealthy = status()
assert unhealthy.healthz != "ok", unhealthy
assert "DisabledException" in unhealthy.healthz, unhealthy.healthz
code, details = code_of(lambda: plugin.Encrypt(pb.EncryptRequest(plaintext=seed, uid="uid-9"), timeout=30))
assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
assert "DisabledException" in details, details
kms.enable_key(KeyId=key_id)
assert status().healthz == "ok"

print("kubernetes kms plugin: ok")
