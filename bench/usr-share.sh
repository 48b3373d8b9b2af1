#!/usr/bin/env bash
# First and unchanged second backup of a real tree (default /usr/share), Lifeboat against
# restic on the same machine, medians of RUNS (default 3) runs, warm cache. Prints one line per
# measurement. Usage: bench/usr-share.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/usr/share}
runs=${RUNS:-3}
bin=${LIFEBOAT_BIN:-target/release/lifeboat}
[ -x "$bin" ] || cargo build --release -q -p lifeboat-cli
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=bench BENCH_PW=bench
tar cf - "$dir" 2>/dev/null > /dev/null   # warm the page cache

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_tool() {
  local tool=$1 phase=$2 start end
  start=$(now)
  case "$tool:$phase" in
    lifeboat:*) "$bin" --config "$work/lifeboat.toml" -q backup >/dev/null ;;
    restic:*) restic -q -r "$work/restic" backup "$dir" >/dev/null 2>&1 || true ;;
  esac
  end=$(now)
  awk "BEGIN{print $end - $start}"
}

for tool in lifeboat restic; do
  first=() second=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/repo" "$work/restic"
    cat > "$work/lifeboat.toml" <<TOML
version = 1
[plan]
name = "bench"
[repositories.main]
url = "$work/repo"
password-env = "BENCH_PW"
[assets.tree]
type = "files"
paths = ["$dir"]
TOML
    if [ "$tool" = lifeboat ]; then "$bin" --config "$work/lifeboat.toml" -q init >/dev/null; else restic -q -r "$work/restic" init >/dev/null; fi
    first+=("$(run_tool "$tool" first)")
    second+=("$(run_tool "$tool" second)")
  done
  f=$(printf '%s\n' "${first[@]}" | median)
  s=$(printf '%s\n' "${second[@]}" | median)
  printf 'bench=tree dir=%s tool=%s phase=first median_s=%.2f runs=%d\n' "$dir" "$tool" "$f" "$runs"
  printf 'bench=tree dir=%s tool=%s phase=unchanged median_s=%.2f runs=%d\n' "$dir" "$tool" "$s" "$runs"
done
