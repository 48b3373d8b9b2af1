#!/usr/bin/env bash
# Streams N MiB (default 1024) of incompressible data through a command asset into a fresh
# local repository and prints the throughput. Usage: bench/stream-command.sh [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
bin=${LIFEBOAT_BIN:-target/release/lifeboat}
[ -x "$bin" ] || cargo build --release -q -p lifeboat-cli
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
export BENCH_PW=bench
"$bin" --config "$work/lifeboat.toml" -q init >/dev/null
start=$(date +%s.%N)
"$bin" --config "$work/lifeboat.toml" -q backup >/dev/null
end=$(date +%s.%N)
secs=$(awk "BEGIN{print $end - $start}")
printf 'bench=stream-command mib=%d seconds=%.2f mib_per_s=%.1f\n' "$mib" "$secs" "$(awk "BEGIN{print $mib / $secs}")"
