#!/usr/bin/env bash
# 200k small files (FILES, default 200000) generated with a fixed seed: 400 directories of
# 0-4 KiB files of hex text (compressible about 2:1, no two alike), then bench/tree.sh on them.
# The same seed gives the same tree on every machine. Usage: bench/small-files.sh
source "$(dirname "$0")/lib.sh"
count=${FILES:-200000}
data=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-small.XXXXXX")
trap 'rm -rf "$data"' EXIT
python3 - "$data" "$count" <<'PY'
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261130)
per_dir = 500
for i in range(count):
    d = os.path.join(root, f"d{i // per_dir:04d}")
    if i % per_dir == 0:
        os.mkdir(d)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(rng.randbytes(rng.randrange(0, 2049)).hex())
PY
bench/tree.sh "$data" "small-files-$count"
