#!/usr/bin/env bash
# A directory tree, side by side: Lifeboat, restic, Borg and `tar czf` on the same machine in
# the same run, warm cache, medians of RUNS (default 3). Per tool: first backup into a fresh
# repository, the unchanged second backup (tar has none: it archives everything again), the
# repository's size, and a full restore into an empty directory, checked by count and bytes of
# regular files. Prints one line per measurement.
# Usage: bench/tree.sh DIR [LABEL]      TOOLS="lifeboat restic borg tar" by default
source "$(dirname "$0")/lib.sh"
dir=$(realpath "${1:?usage: bench/tree.sh DIR [LABEL]}")
label=${2:-$(basename "$dir")}
tools=${TOOLS:-lifeboat restic borg tar}
need restic restic; need borg borgbackup
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-tree.XXXXXX")
trap 'rm -rf "$work"' EXIT

files() { find "$1" -type f | wc -l; }
bytes() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
want_files=$(files "$dir") want_bytes=$(bytes "$dir")
printf 'bench=tree dataset=%s files=%s bytes=%s\n' "$label" "$want_files" "$want_bytes"
tar cf - "$dir" 2>/dev/null >/dev/null   # warm the page cache

lifeboat_plan "$work/lifeboat.toml" "$work/repo"
cat >> "$work/lifeboat.toml" <<TOML
[assets.tree]
type = "files"
paths = ["$dir"]
TOML
lb() { "$bin" --config "$work/lifeboat.toml" -q "$@"; }

init() {
  rm -rf "$work/repo" "$work/restic" "$work/borg" "$work/tar.tgz"
  case $1 in
    lifeboat) lb init >/dev/null ;;
    restic) restic -q -r "$work/restic" init >/dev/null ;;
    borg) borg init -e repokey "$work/borg" 2>/dev/null ;;
    tar) ;;
  esac
}
# Dirty pages of the previous step are written out first, so that no tool pays for another's.
backup() { # TOOL N
  sync
  case $1 in
    lifeboat) measure "$bin" --config "$work/lifeboat.toml" -q backup ;;
    restic) measure restic -q -r "$work/restic" backup "$dir" ;;
    borg) measure borg create "$work/borg::b$2" "$dir" ;;
    tar) measure tar czf "$work/tar.tgz" -C / "${dir#/}" ;;
  esac
}
restore() { # TOOL TARGET
  sync
  case $1 in
    lifeboat) measure "$bin" --config "$work/lifeboat.toml" -q restore tree --to "$2" ;;
    restic) measure restic -q -r "$work/restic" restore latest --target "$2" ;;
    borg) (cd "$2" && measure borg extract "$work/borg::b1") ;;
    tar) measure tar xzf "$work/tar.tgz" -C "$2" ;;
  esac
}
stored() {
  case $1 in
    lifeboat) du -sb "$work/repo" | cut -f1 ;;
    restic) du -sb "$work/restic" | cut -f1 ;;
    borg) du -sb "$work/borg" | cut -f1 ;;
    tar) stat -c %s "$work/tar.tgz" ;;
  esac
}

for tool in $tools; do
  first=() second=() rest=() size=0
  for _ in $(seq "$runs"); do
    init "$tool"
    first+=("$(backup "$tool" 1)")
    size=$(stored "$tool")
    [ "$tool" = tar ] || second+=("$(backup "$tool" 2)")
    rm -rf "$work/out"; mkdir "$work/out"
    rest+=("$(restore "$tool" "$work/out")")
    got_files=$(files "$work/out") got_bytes=$(bytes "$work/out")
    if [ "$got_files" != "$want_files" ] || [ "$got_bytes" != "$want_bytes" ]; then
      echo "$tool restored $got_files files / $got_bytes bytes, expected $want_files / $want_bytes" >&2
      exit 1
    fi
    rm -rf "$work/out"
  done
  emit "bench=tree dataset=$label tool=$tool phase=first stored_bytes=$size" "${first[@]}"
  [ "$tool" = tar ] || emit "bench=tree dataset=$label tool=$tool phase=unchanged" "${second[@]}"
  emit "bench=tree dataset=$label tool=$tool phase=restore verified=files+bytes" "${rest[@]}"
done
