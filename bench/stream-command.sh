#!/usr/bin/env bash
# Streams N MiB (default 1024) of incompressible data through a command asset into a fresh
# local repository and prints the throughput. Usage: bench/stream-command.sh [MIB]
source "$(dirname "$0")/lib.sh"
mib=${1:-1024}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Pre-generate the data so the generator's speed is not measured.
head -c "$((mib * 1024 * 1024))" /dev/urandom > "$work/data.bin"
sync   # no writeback of the generated data during the measurement
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
"$bin" --config "$work/lifeboat.toml" -q init >/dev/null
read -r secs rss < <(measure "$bin" --config "$work/lifeboat.toml" -q backup)
printf 'bench=stream-command mib=%d seconds=%.2f mib_per_s=%.1f peak_rss_mib=%.0f\n' "$mib" "$secs" \
  "$(awk "BEGIN{print $mib / $secs}")" "$(awk "BEGIN{print $rss / 1024}")"
