#!/usr/bin/env bash
# Encrypt, Decrypt and GenerateDataKey throughput for a key of each kind: material under a
# root-key file, under a root key in an HSM, in an AWS_CLOUDHSM custom key store (AES-GCM in
# the token each call) and in an EXTERNAL_KEY_STORE (a ferrokms xks-proxy each call). The
# servers run in strict mode, so every request's signature is checked with the admin's
# secret, which is kept wrapped under the root key.
# Needs softhsm2, openssl and the aws CLI; uses loopback only. Usage:
#   cargo build --release -p ferrokms -p ferrokms-bench && crates/ferrokms-bench/scripts/key-stores.sh [SECONDS]
set -euo pipefail
seconds=${1:-5}
bin=$(cd "$(dirname "$0")/../../.." && pwd)/target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export SOFTHSM2_CONF=$work/softhsm2.conf AWS_DEFAULT_REGION=us-east-1
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >"$SOFTHSM2_CONF"
for label in root cluster-benchABCDEFGH ekm; do
  softhsm2-util --init-token --free --label "$label" --pin 87654321 --so-pin 12345678 >/dev/null
done
echo 87654321 >"$work/pin"; chmod 600 "$work/pin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=xks.bench \
  -addext subjectAltName=DNS:xks.bench -addext basicConstraints=critical,CA:FALSE -keyout "$work/xks-key.pem" -out "$work/xks-cert.pem" 2>/dev/null
secret=FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE
cat >"$work/proxy.toml" <<TOML
listen = "127.0.0.1:18444"
tls_cert = "$work/xks-cert.pem"
tls_key = "$work/xks-key.pem"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "ekm"
pin_file = "$work/pin"
[[credentials]]
access_key_id = "XKSPROXYACCESSKEY2345"
secret_access_key = "$secret"
TOML
"$bin/ferrokms" xks-proxy create-key --config "$work/proxy.toml" --key-id bench-key >/dev/null
"$bin/ferrokms" xks-proxy serve --config "$work/proxy.toml" >/dev/null &
cat >"$work/ferrokms.toml" <<TOML
[[cloudhsm_clusters]]
id = "cluster-benchABCDEFGH"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "cluster-benchABCDEFGH"
[xks]
ca_bundle = "$work/xks-cert.pem"
[xks.connect_to]
"xks.bench" = "127.0.0.1:18444"
TOML

run() { # name, data directory
  local name=$1 data=$2
  "$bin/ferrokms" serve --listen 127.0.0.1:18445 --quotas off --config "$work/ferrokms.toml" \
    --data-dir "$data" >/dev/null &
  local pid=$!
  for _ in $(seq 50); do [ -f "$data/admin-credentials" ] && break; sleep 0.2; done
  # shellcheck disable=SC1091
  . "$data/admin-credentials"
  for _ in $(seq 50); do aws --endpoint-url http://127.0.0.1:18445 kms list-keys >/dev/null 2>&1 && break; sleep 0.2; done
  local kms="aws --endpoint-url http://127.0.0.1:18445 kms"
  local key
  case $name in
    cloudhsm)
      local store
      store=$($kms create-custom-key-store --custom-key-store-name s --cloud-hsm-cluster-id cluster-benchABCDEFGH \
        --trust-anchor-certificate x --key-store-password 87654321 --query CustomKeyStoreId --output text)
      $kms connect-custom-key-store --custom-key-store-id "$store"
      key=$($kms create-key --origin AWS_CLOUDHSM --custom-key-store-id "$store" --query KeyMetadata.KeyId --output text) ;;
    external)
      local store
      # As JSON: the CLI would fetch an https:// parameter value as a URL.
      store=$($kms create-custom-key-store --query CustomKeyStoreId --output text --cli-input-json "{
        \"CustomKeyStoreName\": \"x\", \"CustomKeyStoreType\": \"EXTERNAL_KEY_STORE\",
        \"XksProxyUriEndpoint\": \"https://xks.bench\", \"XksProxyUriPath\": \"/kms/xks/v1\",
        \"XksProxyConnectivity\": \"PUBLIC_ENDPOINT\", \"XksProxyAuthenticationCredential\":
        {\"AccessKeyId\": \"XKSPROXYACCESSKEY2345\", \"RawSecretAccessKey\": \"$secret\"}}")
      $kms connect-custom-key-store --custom-key-store-id "$store"
      key=$($kms create-key --origin EXTERNAL_KEY_STORE --custom-key-store-id "$store" --xks-key-id bench-key \
        --query KeyMetadata.KeyId --output text) ;;
    *) key=$($kms create-key --query KeyMetadata.KeyId --output text) ;;
  esac
  echo "== $name"
  "$bin/ferrokms-bench" --endpoint http://127.0.0.1:18445 --no-ceiling -c 16 -s "$seconds" --warmup 1 \
    --key-id "$key" --workloads encrypt-4k,decrypt-4k,generate-data-key
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run file-root "$work/file-data"
"$bin/ferrokms" init --hsm --module /usr/lib/softhsm/libsofthsm2.so --token-label root \
  --pin-file "$work/pin" --data-dir "$work/hsm-data" >/dev/null
run hsm-root "$work/hsm-data"
run cloudhsm "$work/cloudhsm-data"
run external "$work/external-data"
