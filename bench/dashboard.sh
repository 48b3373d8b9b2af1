#!/usr/bin/env bash
# The dashboard's render times and the daemon's memory: the overview, and the page of an
# asset with SNAPSHOTS (10000) snapshots, each fetched REQUESTS (20) times by curl from a
# running daemon; medians. The history is written by the many_snapshots example in one
# process. Prints key=value lines like the other scripts.
source "$(dirname "$0")/lib.sh"
need curl curl
snapshots=${SNAPSHOTS:-10000}
requests=${REQUESTS:-20}
[ -x target/release/examples/many_snapshots ] ||
  cargo build --release -q -p lifeboat-repo --example many_snapshots
work=$(mktemp -d)
daemon_pid=
cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www"
seq 1 2000 > "$work/www/index.txt"
lifeboat_plan "$work/lifeboat.toml" "$work/repo"
cat >> "$work/lifeboat.toml" <<TOML
[assets.web]
type = "files"
paths = ["$work/www"]
priority = "P0"
[assets.history]
type = "command"
backup = "echo history"
restore = "cat > /dev/null"
TOML
cd "$work"
"$bin" init >/dev/null
for _ in 1 2 3; do "$bin" backup web >/dev/null; done
start=$(date +%s.%N)
"$OLDPWD/target/release/examples/many_snapshots" "$work/repo" bench history "$snapshots"
echo "bench=dashboard phase=history snapshots=$snapshots wrote_s=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")"

port=$(free_port)
"$bin" daemon --listen "127.0.0.1:$port" --check-every 600s >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/api/status" | grep -q '"refreshed":"' && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/api/status" | grep -q '"refreshed":"' ||
  { echo "the daemon never finished its first look" >&2; cat "$work/daemon.log" >&2; exit 1; }

# page PATH LABEL: median and slowest of REQUESTS fetches, after one warm-up.
page() {
  local url="http://127.0.0.1:$port$1" times
  curl -sf -o /dev/null "$url"
  times=$(for _ in $(seq 1 "$requests"); do curl -sf -o /dev/null -w '%{time_total}\n' "$url"; done)
  printf 'bench=dashboard page=%s median_ms=%.1f max_ms=%.1f requests=%d bytes=%d\n' "$2" \
    "$(echo "$times" | median | awk '{print $1 * 1000}')" \
    "$(echo "$times" | sort -n | tail -1 | awk '{print $1 * 1000}')" "$requests" \
    "$(curl -sf "$url" | wc -c)"
}
page / overview
page /assets/web asset-3-snapshots
page /assets/history "asset-$snapshots-snapshots"
page /activity activity
rss=$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$daemon_pid/status")
printf 'bench=dashboard daemon_rss_mib=%.1f daemon_peak_rss_mib=%.1f\n' "$(awk "BEGIN{print $rss/1024}")" "$(awk "BEGIN{print $hwm/1024}")"
