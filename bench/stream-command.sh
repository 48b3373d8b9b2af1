#!/usr/bin/env bash
# Streams N MiB (default 1024) through a command asset into a fresh local repository and
# prints the throughput, medians of RUNS, beside restic reading the same bytes from stdin.
# DATA=random (default: incompressible) or DATA=dump (text rows like a pgbench dump,
# compressible about 6:1). Also checks that nothing was written outside the repository: the
# spool directory is an empty directory of its own during the run.
# Usage: bench/stream-command.sh [MIB]
source "$(dirname "$0")/lib.sh"
need restic restic
mib=${1:-1024}
kind=${DATA:-random}
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-stream.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Pre-generate the data so the generator's speed is not measured.
case $kind in
  random) head -c "$((mib * 1024 * 1024))" /dev/urandom > "$work/data.bin" ;;
  dump) python3 - "$work/data.bin" "$mib" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261205)
size = mib << 20
with open(path, "w") as f:
    n, i = 0, 0
    while n < size:
        i += 1
        line = f"{i}\t{rng.randint(1, 50)}\t{rng.randint(-5000, 5000)}\t{'updated' if rng.random() < 0.1 else '':<84}\n"
        f.write(line)
        n += len(line)
PY
  ;;
  *) echo "DATA is random or dump" >&2; exit 1 ;;
esac
sync   # no writeback of the generated data during the measurement
mkdir "$work/spool"
cat > "$work/lifeboat.toml" <<TOML
version = 1
[plan]
name = "bench"
[repositories.main]
url = "$work/repo"
password-env = "BENCH_PW"
[assets.stream]
type = "command"
backup = "cat $work/data.bin"
TOML
lbs=() rs=()
for _ in $(seq "$runs"); do
  rm -rf "$work/repo"; "$bin" --config "$work/lifeboat.toml" -q init >/dev/null
  sync
  lbs+=("$(LIFEBOAT_SPOOL_DIR="$work/spool" measure "$bin" --config "$work/lifeboat.toml" -q backup)")
  [ -z "$(ls -A "$work/spool")" ] || { echo "the stream left files in the spool directory" >&2; exit 1; }
  rm -rf "$work/restic"; restic -q -r "$work/restic" init >/dev/null
  sync
  rs+=("$(measure sh -c "restic -q -r '$work/restic' backup --stdin --stdin-filename data.bin < '$work/data.bin'")")
done
for tool in lifeboat restic; do
  if [ $tool = lifeboat ]; then samples=("${lbs[@]}"); else samples=("${rs[@]}"); fi
  wall=$(printf '%s\n' "${samples[@]}" | awk '{print $1}' | median)
  rss=$(printf '%s\n' "${samples[@]}" | awk '{print $2}' | median)
  printf 'bench=stream-command data=%s tool=%s mib=%d wall_s=%.2f mib_per_s=%.1f peak_rss_mib=%.0f runs=%d\n' \
    "$kind" "$tool" "$mib" "$wall" "$(awk "BEGIN{print $mib / $wall}")" "$(awk "BEGIN{print $rss / 1024}")" "$runs"
done
