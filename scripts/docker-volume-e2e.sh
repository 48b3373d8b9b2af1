#!/usr/bin/env bash
# docker-volume assets against a real Docker daemon. The test suite cannot start one (its
# sandbox has no Docker engine) and serves the Engine API's documented answers instead
# (crates/lifeboat-cli/tests/it/docker_volume.rs); run this on a host with Docker, as a user
# that may use it and read its volumes (root):
#
#   bash scripts/docker-volume-e2e.sh
#
# It backs up a volume by name while its writer is stopped, restores it in place over changed
# content, into a new volume and into a sandbox, and checks each with `docker run` reads.
# Everything it creates is named lifeboat-e2e-<pid> and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

lifeboat=${LIFEBOAT:-target/debug/lifeboat}
[ -x "$lifeboat" ] || cargo build --locked --bin lifeboat
image=${LIFEBOAT_E2E_IMAGE:-busybox:stable}
name=lifeboat-e2e-$$
work=$(mktemp -d)
cleanup() {
  docker rm -f "$name-app" >/dev/null 2>&1 || true
  docker volume rm -f "$name" "$name-copy" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
in_volume() { docker run --rm -v "$1:/data" "$image" sh -c "$2"; }

docker volume create "$name" >/dev/null
in_volume "$name" 'echo original > /data/file.txt && mkdir -p /data/sub && echo notes > /data/sub/notes.txt'
docker run -d --name "$name-app" -v "$name:/data" "$image" \
  sh -c 'i=0; while :; do i=$((i+1)); echo $i > /data/counter; sleep 0.01; done' >/dev/null

cat > "$work/lifeboat.toml" <<TOML
version = 1

[plan]
name = "docker-e2e"

[repositories.main]
url = "$work/repo"
password-env = "LIFEBOAT_E2E_PASSWORD"

[assets.app]
type = "docker-volume"
volume = "$name"
stop = ["$name-app"]
TOML
export LIFEBOAT_E2E_PASSWORD=e2e-password
lb() { "$lifeboat" --config "$work/lifeboat.toml" "$@"; }

lb init
lb backup app
[ "$(docker inspect -f '{{.State.Running}}' "$name-app")" = true ] || fail "the container was not started again"
echo "ok: backed up by name, the writer running again"

in_volume "$name" 'echo changed > /data/file.txt && echo extra > /data/extra.txt'
lb restore app --yes
[ "$(in_volume "$name" 'cat /data/file.txt')" = original ] || fail "in-place restore: file.txt"
in_volume "$name" 'test ! -e /data/extra.txt' || fail "in-place restore left extra.txt"
[ "$(docker inspect -f '{{.State.Running}}' "$name-app")" = true ] || fail "the container was not started after the restore"
echo "ok: restored in place, the writer running again"

lb restore app --to "$name-copy"
[ "$(in_volume "$name-copy" 'cat /data/sub/notes.txt')" = notes ] || fail "restore into a new volume"
echo "ok: restored into a new volume"

lb verify --restore app
echo "PASS: docker-volume against $(docker version -f '{{.Server.Version}}')"
