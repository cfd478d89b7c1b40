#!/usr/bin/env bash
# Encrypt 4 KiB in strict mode under a key whose policy has no condition, and under one whose
# policy has a (never matching) condition, so that every request builds its condition keys:
# what the request context costs. Needs the aws CLI; loopback only. Usage:
#   cargo build --release -p ferrokms -p ferrokms-bench && SECONDS_EACH=15 crates/ferrokms-bench/scripts/conditions.sh
set -euo pipefail
BIN=$(cd "$(dirname "$0")/../../.." && pwd)/target/release
DIR=$(mktemp -d)
$BIN/ferrokms serve --data-dir "$DIR/data" --listen 127.0.0.1:4799 --quotas off > "$DIR/out" 2>&1 &
PID=$!
trap 'kill $PID; rm -rf "$DIR"' EXIT
sleep 1.5
. "$DIR/data/admin-credentials"; export AWS_DEFAULT_REGION=us-east-1
E="--endpoint-url http://127.0.0.1:4799"
PLAIN=$(aws $E kms create-key --query KeyMetadata.KeyId --output text)
cat > "$DIR/p.json" <<'JSON'
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-00000000"}}}]}
JSON
COND=$(aws $E kms create-key --policy "file://$DIR/p.json" --query KeyMetadata.KeyId --output text)
for k in "$PLAIN" "$COND"; do
  $BIN/ferrokms-bench --endpoint http://127.0.0.1:4799 --workloads encrypt-4k --key-id "$k" \
    --seconds ${SECONDS_EACH:-10} --warmup 2 --no-ceiling
done
