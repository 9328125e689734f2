#!/bin/sh
# Random secrets for compose.yaml, in ./secrets (a directory of files, mode 0600). Run once.
set -eu
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
new() { [ -s "secrets/$1" ] || printf '%s' "$2" > "secrets/$1"; }
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
new secret_key "$(hex 32)"
new postgres_password "$(hex 24)"
new s3_access_key_id "reapi$(hex 8)"
new s3_secret_access_key "$(hex 24)"
new database_url "postgresql+asyncpg://reapi:$(cat secrets/postgres_password)@postgres:5432/reapi"
echo "secrets in $(pwd)/secrets"
