# Sourced by the bench scripts: the Lifeboat binary, timing with peak RSS, medians and the
# one-line output format. Every measurement line is `key=value` pairs, one per line, so
# `grep '^bench=' | column -t` or awk reads them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${RUNS:-3}
bin=${LIFEBOAT_BIN:-target/release/lifeboat}
[ -x "$bin" ] || cargo build --release -q --workspace
bin=$(realpath "$bin")
[ -x /usr/bin/time ] || { echo "GNU time is needed for peak RSS: apt-get install time" >&2; exit 1; }
export BENCH_PW=bench RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

need() { command -v "$1" >/dev/null || { echo "$1 is needed: apt-get install $2" >&2; exit 1; }; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# measure CMD...: runs CMD with its output discarded; prints "wall_seconds peak_rss_kib".
# A failing command stops the script: a benchmark of a failed run measures nothing.
measure() {
  local out
  out=$(mktemp)
  if ! /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$out.err"; then
    echo "failed: $*" >&2; cat "$out.err" >&2; rm -f "$out" "$out.err"; exit 1
  fi
  tail -1 "$out"; rm -f "$out" "$out.err"
}

# emit PREFIX SAMPLES...: one line with the medians of samples "wall rss" and extra key=values
# given as PREFIX (e.g. "bench=tree tool=restic phase=first").
emit() {
  local prefix=$1; shift
  local wall rss
  wall=$(printf '%s\n' "$@" | awk '{print $1}' | median)
  rss=$(printf '%s\n' "$@" | awk '{print $2}' | median)
  printf '%s wall_s=%.2f peak_rss_mib=%.0f runs=%d\n' "$prefix" "$wall" "$(awk "BEGIN{print $rss / 1024}")" "$#"
}

# lifeboat_plan FILE REPO: a plan's header with one local repository; the caller appends assets.
lifeboat_plan() {
  cat > "$1" <<TOML
version = 1
[plan]
name = "bench"
[repositories.main]
url = "$2"
password-env = "BENCH_PW"
TOML
}
