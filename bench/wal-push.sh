#!/usr/bin/env bash
# How fast each archive_command drains a backlog of WAL segments: Lifeboat's `wal push`,
# pgBackRest's `archive-push` (synchronous, its default) and the seed plans' `test ! -f DEST &&
# cp %p DEST`. A pgbench load of SCALE (20) fills pg_wal while archiving is off; each tool then
# gets a copy of the same segments with their `.ready` files and is called the way
# PostgreSQL's archiver calls it: once per segment, oldest first, marking each one done on
# success. Lifeboat's push takes the ready segments along, so most of its calls return at once.
# Usage: bench/wal-push.sh
source "$(dirname "$0")/lib.sh"
need pgbackrest pgbackrest
scale=${SCALE:-20}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-wal.XXXXXX")
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(free_port)
mkdir "$work/pg" "$work/pgbr"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/pgbr"
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A cluster that keeps every segment: archiving on, the command failing, so all stay ready.
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
echo "archive_command = '/bin/false'" | as_pg tee -a "$work/pg/data/postgresql.auto.conf" >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c archive_mode=on -c max_wal_size=4GB" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
"$pgbin/pgbench" -i -q -s "$scale" postgres >/dev/null 2>&1
"$pgbin/psql" -qAtc "SELECT pg_switch_wal()" postgres >/dev/null
sleep 1
# The backlog, as PostgreSQL left it (with the control file pgBackRest checks its pg1-path by).
mkdir -p "$work/backlog/pg_wal/archive_status" "$work/backlog/global"
cp "$work/pg/data/PG_VERSION" "$work/backlog/"
cp "$work/pg/data/global/pg_control" "$work/backlog/global/"
for ready in "$work/pg/data/pg_wal/archive_status/"*.ready; do
  seg=$(basename "$ready" .ready)
  cp "$work/pg/data/pg_wal/$seg" "$work/backlog/pg_wal/"
  touch "$work/backlog/pg_wal/archive_status/$seg.ready"
done
segments=$(ls "$work/backlog/pg_wal/archive_status" | wc -l)
printf 'bench=wal-push scale=%s segments=%s wal_bytes=%s\n' "$scale" "$segments" \
  "$(du -sb "$work/backlog/pg_wal" | cut -f1)"

cat > "$work/pgbackrest.conf" <<CONF
[global]
repo1-path=$work/pgbr/repo
log-path=$work/pgbr
lock-path=$work/pgbr
log-level-console=warn
log-level-file=off
[bench]
pg1-path=$work/pg/data
pg1-port=$port
pg1-socket-path=$work/pg
CONF
as_pg pgbackrest --config="$work/pgbackrest.conf" --stanza=bench stanza-create >/dev/null

lifeboat_plan "$work/lifeboat.toml" "$work/repo"
cat >> "$work/lifeboat.toml" <<TOML
[assets.main]
type = "postgres-cluster"
url = "postgres://postgres@127.0.0.1:$port/postgres"
TOML
"$bin" --config "$work/lifeboat.toml" -q init >/dev/null

# drain TOOL: a fresh copy of the backlog, then the archiver's loop with TOOL's command.
# The repositories start empty each run, so every run stores everything.
drain() {
  local tool=$1 dir=$work/run
  rm -rf "$dir" "$work/cp-archive" "$work/repo" "$work/pgbr/repo" "$work/.lifeboat"
  cp -a "$work/backlog" "$dir"
  mkdir -p "$work/cp-archive"
  case $tool in
    lifeboat) "$bin" --config "$work/lifeboat.toml" -q init >/dev/null ;;
    pgbackrest) as_pg pgbackrest --config="$work/pgbackrest.conf" --stanza=bench stanza-create >/dev/null ;;
  esac
  # PostgreSQL runs archive_command as its own user: so do the three here.
  local su=()
  [ "$(id -u)" = 0 ] && { chown -R postgres "$work"; su=(runuser -u postgres --); }
  sync
  /usr/bin/time -f '%e %M' -o "$work/time" "${su[@]}" bash -c '
    cd "$1"; tool=$2; work=$3; bin=$4
    for ready in $(ls pg_wal/archive_status/ | sort); do
      seg=${ready%.ready}
      case $tool in
        lifeboat) "$bin" --config "$work/lifeboat.toml" -q wal push main "pg_wal/$seg" ;;
        pgbackrest) pgbackrest --config="$work/pgbackrest.conf" --stanza=bench --pg1-path="$1" archive-push "pg_wal/$seg" ;;
        cp) test ! -f "$work/cp-archive/$seg" && cp "pg_wal/$seg" "$work/cp-archive/$seg" && sync "$work/cp-archive/$seg" ;;
      esac || { echo "$tool failed on $seg" >&2; exit 1; }
      mv "pg_wal/archive_status/$ready" "pg_wal/archive_status/$seg.done"
    done' _ "$dir" "$tool" "$work" "$bin" >/dev/null || { echo "$tool: the drain failed" >&2; exit 1; }
  cat "$work/time"
}

for tool in ${TOOLS:-lifeboat pgbackrest cp}; do
  samples=()
  for _ in $(seq "$runs"); do
    sample=$(drain "$tool") || exit 1
    samples+=("$sample")
  done
  stored=$(du -sb "$work/repo" "$work/pgbr/repo" "$work/cp-archive" 2>/dev/null | awk -v t="$tool" '
    (t == "lifeboat" && $2 ~ /\/repo$/ && $2 !~ /pgbr/) || (t == "pgbackrest" && $2 ~ /pgbr\/repo$/) || (t == "cp" && $2 ~ /cp-archive$/) {print $1}' || true)
  emit "bench=wal-push tool=$tool segments=$segments stored_bytes=${stored:-0}" "${samples[@]}"
done
