#!/usr/bin/env bash
# Distributed-storage test: a 3-node Garage cluster (replication factor 3) on 127.0.0.1, a
# backup during which one node is killed, then a byte-for-byte restore and a full
# `verify --read-data` with the node still down.
#
#   bash scripts/garage-test.sh            # installs Garage first when missing (~15 min)
#   GARAGE=/path/to/garage bash scripts/garage-test.sh
#   LIFEBOAT=target/release/lifeboat bash scripts/garage-test.sh   # skip building Lifeboat
#
# Not part of `bash scripts/test`: building Garage takes longer than the whole test suite.
# Exit 0 when every check passed; the work directory is removed unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE=${GARAGE:-$(command -v garage || true)}
if [ -z "$GARAGE" ]; then
  echo "garage not found: cargo install garage --locked (about 15 minutes)"
  cargo install garage --locked
  GARAGE="$HOME/.cargo/bin/garage"
fi
echo "garage: $("$GARAGE" --version 2>/dev/null | head -1)"

if [ -z "${LIFEBOAT:-}" ]; then
  cargo build --locked -q -p lifeboat-cli
  LIFEBOAT="$PWD/target/debug/lifeboat"
fi

WORK=$(mktemp -d -t lifeboat-garage-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r -a PORTS <<<"$(free_ports 9)"
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

for i in 1 2 3; do
  rpc=${PORTS[$(((i - 1) * 3))]}
  s3=${PORTS[$(((i - 1) * 3 + 1))]}
  admin=${PORTS[$(((i - 1) * 3 + 2))]}
  mkdir -p "$WORK/node$i/meta" "$WORK/node$i/data"
  cat >"$WORK/node$i.toml" <<EOF
metadata_dir = "$WORK/node$i/meta"
data_dir = "$WORK/node$i/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$SECRET"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
  "$GARAGE" -c "$WORK/node$i.toml" server >"$WORK/node$i.log" 2>&1 &
  PIDS+=("$!")
  disown "$!" # killed on purpose below: no job-control notice

done
S3_PORT=${PORTS[1]}
g() { "$GARAGE" -c "$WORK/node1.toml" "$@"; }

for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.2; done
ids=()
for i in 1 2 3; do
  for _ in $(seq 100); do
    id=$("$GARAGE" -c "$WORK/node$i.toml" node id -q 2>/dev/null) && break
    sleep 0.2
  done
  ids+=("$id")
done
g node connect "${ids[1]}" >/dev/null
g node connect "${ids[2]}" >/dev/null
for id in "${ids[@]}"; do g layout assign -z dc1 -c 1G "${id%@*}" >/dev/null; done
g layout apply --version 1 >/dev/null
for _ in $(seq 150); do
  [ "$(g status 2>/dev/null | grep -c 'dc1')" -ge 3 ] && break
  sleep 0.2
done
key=$(g key create lifeboat-test)
KEY_ID=$(awk -F': *' '/Key ID/ {print $2; exit}' <<<"$key")
KEY_SECRET=$(awk -F': *' '/Secret key/ {print $2; exit}' <<<"$key")
g bucket create lifeboat >/dev/null
g bucket allow --read --write --owner lifeboat --key lifeboat-test >/dev/null
echo "cluster: 3 nodes, replication factor 3, S3 on 127.0.0.1:$S3_PORT"

# What to back up: 60 MB of files and a 100 MB command artifact, incompressible.
mkdir -p "$WORK/src"
for n in $(seq 1 30); do head -c 2000000 /dev/urandom >"$WORK/src/file-$n.bin"; done
cp -r /usr/share/doc/bash "$WORK/src/" 2>/dev/null || true
head -c 100000000 /dev/urandom >"$WORK/vault.snap"
cat >"$WORK/lifeboat.toml" <<EOF
version = 1
[plan]
name = "garage-test"

[repositories.garage]
url = "s3://lifeboat/dr?endpoint=http://127.0.0.1:$S3_PORT&region=garage&path-style=true"
password-env = "LIFEBOAT_PASSWORD"

[assets.web]
type = "files"
paths = ["$WORK/src"]

[assets.vault]
type = "command"
backup = "cat $WORK/vault.snap"
filename = "vault.snap"
EOF
export LIFEBOAT_PASSWORD=garage-test-password AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$KEY_SECRET
lb() { "$LIFEBOAT" --config "$WORK/lifeboat.toml" "$@"; }

lb init >/dev/null
start=$(date +%s.%N)
lb --json backup >"$WORK/backup.json" 2>"$WORK/backup.err" &
backup_pid=$!
sleep 2
kill -9 "${PIDS[2]}"
echo "node 3 killed during the backup"
if ! wait "$backup_pid"; then
  echo "FAIL: backup failed with a node down"; cat "$WORK/backup.err"; exit 1
fi
end=$(date +%s.%N)
echo "backup: ok in $(python3 -c "print(round($end - $start, 1))") s with node 3 down"

lb restore web --to "$WORK/restored" >/dev/null
diff -r "$WORK/src" "$WORK/restored$WORK/src" && echo "restore web: identical"
lb dump vault >"$WORK/vault.out"
cmp "$WORK/vault.snap" "$WORK/vault.out" && echo "dump vault: identical"
lb verify --read-data >"$WORK/verify.out" || { echo "FAIL: verify"; cat "$WORK/verify.out"; exit 1; }
echo "verify --read-data: clean"
echo "PASS"
