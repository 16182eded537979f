#!/usr/bin/env bash
# Installs what replite needs to build and test on Debian 12, from Debian's
# packages only. Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake ninja-build pkg-config
      libsqlite3-dev sqlite3 libcurl4-openssl-dev libssl-dev libzstd-dev catch2
      python3 clang libclang-rt-14-dev curl
      openssh-server openssh-client  # sshd and ssh-keygen for the sftp:// tests
      python3-cryptography)  # the fake Google token endpoint checks RS256 JWTs with it
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# azurite (Azure Blob Storage emulator) for the abs:// tests, and Azure's
# own JavaScript SDK as the independent client that reads back what replite
# wrote (as boto3 does for S3), from the npm registry into .deps/azurite
# (git-ignored; tests/azurite_server.cc looks there, or in
# REPLITE_AZURITE_DIR). azurite 3.35 and @azure/storage-blob 12.29 are the
# newest that run on Node.js 20 (later ones want Node.js 22).
AZURITE_VERSION=3.35.0
AZURE_BLOB_SDK_VERSION=12.29.0
AZURITE_DIR="$(cd "$(dirname "$0")/.." && pwd)/.deps/azurite"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
npm_version() { node -p "require('$AZURITE_DIR/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [ "$(npm_version azurite)" != "$AZURITE_VERSION" ] ||
   [ "$(npm_version @azure/storage-blob)" != "$AZURE_BLOB_SDK_VERSION" ]; then
  echo "install-deps: installing azurite $AZURITE_VERSION and @azure/storage-blob $AZURE_BLOB_SDK_VERSION into $AZURITE_DIR"
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" "@azure/storage-blob@$AZURE_BLOB_SDK_VERSION"
fi
