#!/usr/bin/env bash
# Drives a real ferrokms server with the real aws CLI, as a new user would: start, create a
# key and an alias, encrypt with an encryption context, decrypt, compare bytes.
# FERROKMS_BIN names the binary (default: target/debug/ferrokms), AWS_CLI the aws command
# (default: aws; tests/e2e/cli.rs runs pip's v1 and Debian's v2, /usr/bin/aws).
set -euo pipefail

bin=${FERROKMS_BIN:-target/debug/ferrokms}
aws_cli=${AWS_CLI:-aws}
command -v "$aws_cli" >/dev/null || { echo "the aws CLI $aws_cli is not installed (pip install awscli; apt-get install awscli)" >&2; exit 1; }
aws() { command "$aws_cli" "$@"; }
echo "$("$aws_cli" --version 2>&1)"
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/banner" 2>"$work/log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^try: ' "$work/banner" 2>/dev/null && break
  sleep 0.1
done
endpoint=$(sed -n 's/^ferrokms listening on //p' "$work/banner")
[ -n "$endpoint" ] || { cat "$work/banner" "$work/log" >&2; exit 1; }

# The credentials file is meant to be sourced.
. "$work/data/admin-credentials"
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_PAGER=""
kms() { aws --endpoint-url "$endpoint" kms "$@"; }

key_id=$(kms create-key --description "my app key" --query KeyMetadata.KeyId --output text)
kms create-alias --alias-name alias/my-app --target-key-id "$key_id"
head -c 3000 /dev/urandom >"$work/secret.bin"
kms encrypt --key-id alias/my-app --plaintext "fileb://$work/secret.bin" \
  --encryption-context service=payments --query CiphertextBlob --output text \
  | base64 -d >"$work/ciphertext.bin"
kms decrypt --ciphertext-blob "fileb://$work/ciphertext.bin" \
  --encryption-context service=payments --query Plaintext --output text \
  | base64 -d >"$work/roundtrip.bin"
cmp "$work/secret.bin" "$work/roundtrip.bin"

# The wrong context must fail with AWS's error.
if kms decrypt --ciphertext-blob "fileb://$work/ciphertext.bin" \
     --encryption-context service=other >/dev/null 2>"$work/err"; then
  echo "decrypt with the wrong encryption context succeeded" >&2; exit 1
fi
grep -q InvalidCiphertextException "$work/err"

account=$(aws --endpoint-url "$endpoint" sts get-caller-identity --query Account --output text)
[ "$account" = 111122223333 ] || { echo "unexpected account $account" >&2; exit 1; }

# The audit trail, read the way CloudTrail users read it.
event=$(aws --endpoint-url "$endpoint" cloudtrail lookup-events \
  --lookup-attributes AttributeKey=EventName,AttributeValue=Encrypt \
  --query 'Events[0].EventName' --output text)
[ "$event" = Encrypt ] || { echo "lookup-events returned '$event'" >&2; exit 1; }

echo "aws-cli smoke: ok"
