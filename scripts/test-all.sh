#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust: installs what is missing (Debian
# packages, Python and npm packages, cargo-fuzz), starts PostgreSQL on 127.0.0.1:5432 if it is
# down, then runs every test: `cargo test --workspace` and each fuzz target over its corpus.
# Run as root, or as a user who may sudo (for apt-get and PostgreSQL). `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
apt_install() {
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The aws CLI drives the server in tests/aws-cli-smoke.sh; boto3, the AWS Encryption SDK and
# pyca/cryptography in tests/interop/.
if ! command -v aws >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check awscli
fi
if ! python3 -c 'import boto3, aws_encryption_sdk, cryptography' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check boto3 aws-encryption-sdk cryptography
fi
# Tink with its AWS KMS integration and the Encryption SDK CLI (tests/interop/tink_and_esdk_cli.py).
if ! python3 -c 'import tink.integration.awskms' 2>/dev/null || ! command -v aws-encryption-cli >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'tink[awskms]' aws-encryption-sdk-cli
fi

# grpcio and its stub generator call the Kubernetes KMS v2 plugin as the API server does
# (tests/interop/kubernetes_kms_plugin.py).
if ! python3 -c 'import grpc, grpc_tools' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check grpcio grpcio-tools
fi

# SoftHSM2 is the PKCS#11 token of the HSM tests (crates/ferrokms-hsm/tests, tests/e2e/hsm.rs,
# custom_key_stores.rs, xks.rs); OpenSC's pkcs11-tool looks inside it as a client of its own,
# and curl's --aws-sigv4 calls the XKS proxy as AWS's proxy test client does.
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e /usr/lib/softhsm/libsofthsm2.so ] \
  || ! command -v pkcs11-tool >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  apt_install softhsm2 opensc curl
fi

# The reference HA deployment of tests/ha/cluster.sh (tests/e2e/ha.rs): Patroni with etcd
# as its consensus store, and HAProxy routing to the primary.
if ! command -v patroni >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1 \
  || ! command -v haproxy >/dev/null 2>&1; then
  apt_install patroni etcd-server haproxy
fi

# The web console (console/): its locked npm packages (TypeScript, Vite, the AWS SDK for
# JavaScript, playwright-core), proof that the committed build in console/dist is what the
# sources build, and Debian's Chromium for the browser test (tests/e2e/console.rs).
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
npm ci --prefix console --no-audit --no-fund --loglevel=error
# The AWS SDK and Encryption SDK for JavaScript (tests/interop/js).
npm ci --prefix tests/interop/js --no-audit --no-fund --loglevel=error
npm run --prefix console --silent build >/dev/null
if [ -n "$(git status --porcelain -- console/dist)" ]; then
  git status --short -- console/dist
  echo "console/dist is not what console/ builds: run 'npm run --prefix console build' and commit it" >&2
  exit 1
fi

# The aws CLI v2 from Debian (/usr/bin/aws; pip's v1 stays `aws` on the PATH).
if [ ! -x /usr/bin/aws ] || ! /usr/bin/aws --version 2>&1 | grep -q '^aws-cli/2'; then
  apt_install awscli
fi

# Go and the AWS SDK for Go v2 from Debian (tests/interop/go, built in GOPATH mode).
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/aws/aws-sdk-go-v2/service/kms ]; then
  apt_install golang-go golang-github-aws-aws-sdk-go-v2-dev
fi

# PostgreSQL on 127.0.0.1:5432, user postgres with trust auth, is part of the test
# environment: installed and opened to that user on loopback if missing, started if down.
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt_install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -n | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

cargo test --workspace

# The FIPS 140-3 build (docs/deployment.md): AWS-LC's FIPS module builds with CMake, Go and
# clang. Its core unit tests, and the e2e tests of the module, cryptography, keys, TLS and
# the Kubernetes plugin, run on it.
if ! command -v cmake >/dev/null 2>&1 || ! command -v go >/dev/null 2>&1 \
  || ! command -v clang >/dev/null 2>&1; then
  apt_install cmake golang-go clang
fi
cargo test -p ferrokms-core --features fips --lib
cargo test --features fips --test e2e -- fips:: asymmetric:: crypto:: keys:: kubernetes:: tls::

# Fuzz targets (fuzz/README.md), each over its committed corpus for a few seconds.
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
fuzz/run-all.sh 5
