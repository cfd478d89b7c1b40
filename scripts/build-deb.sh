#!/usr/bin/env bash
# Builds the Debian package of ferrokms from a built binary, with dpkg-deb alone:
#   scripts/build-deb.sh [BINARY [OUT_DIR]]   (defaults: target/release/ferrokms, target/debian)
# It holds the binary, the systemd unit (packaging/debian/ferrokms.service), the default
# /etc/ferrokms/config.toml (a conffile), the man pages and shell completions the binary
# generates, and the maintainer scripts that make the `ferrokms` user.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/ferrokms}
out=${2:-target/debian}
[ -x "$binary" ] || { echo "no binary at $binary: cargo build --release first" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$binary" "$stage/usr/bin/ferrokms"
install -D -m 0644 packaging/debian/ferrokms.service "$stage/lib/systemd/system/ferrokms.service"
install -D -m 0640 packaging/debian/config.toml "$stage/etc/ferrokms/config.toml"
mkdir -p "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions" \
  "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/doc/ferrokms"
"$binary" man --out-dir "$stage/usr/share/man/man1"
gzip -9n "$stage"/usr/share/man/man1/*.1
"$binary" completions bash > "$stage/usr/share/bash-completion/completions/ferrokms"
"$binary" completions zsh > "$stage/usr/share/zsh/vendor-completions/_ferrokms"
install -m 0644 README.md "$stage/usr/share/doc/ferrokms/README.md"
install -m 0644 docs/deployment.md "$stage/usr/share/doc/ferrokms/deployment.md"

mkdir -p "$stage/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
echo /etc/ferrokms/config.toml > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: ferrokms
Version: $version
Architecture: $arch
Maintainer: ferrokms developers <ferrokms@localhost>
Installed-Size: $size
Depends: libc6, adduser
Section: admin
Priority: optional
Description: self-hosted key management service that speaks the AWS KMS API
 Keys wrapped at rest under a root key (a file or an HSM), key policies and grants
 evaluated as AWS does, SigV4, an audit trail that proves itself, SQLite or PostgreSQL.
 Runs as the ferrokms user under a hardened systemd unit; data in /var/lib/ferrokms.
CONTROL
mkdir -p "$out"
deb="$out/ferrokms_${version}_${arch}.deb"
# DEB_COMPRESSION=none for a quick package of a large debug binary (CI).
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
