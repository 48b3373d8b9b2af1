#!/usr/bin/env bash
# PostgreSQL side by side on one scratch cluster (127.0.0.1, free port, temp dir; never the
# machine's own server): a pgbench database of SCALE (default 50), then, medians of RUNS (3):
#   backup:  bare `pg_dump -Fc` to a file, the seeds' `pg_dump | gzip`, `pg_dump -Fc -Z0 |
#            restic --stdin`, a pgBackRest full backup, `lifeboat backup`
#   restore: `pg_restore` of that file into a new database, the seeds' `gunzip | psql`,
#            `restic dump | pg_restore`, pgBackRest restore of the cluster started until it
#            answers, `lifeboat restore --to` (created, loaded, every table's rows checked
#            against the manifest)
#   storage: a first backup and then DAYS (default 7) days of pgbench load, each followed by a
#            backup: the gzip files, restic's and Lifeboat's repositories
# One line per measurement. PHASES picks some of "backup restore pgbackrest storage" (all by
# default; restore needs backup). Usage: bench/postgres.sh
source "$(dirname "$0")/lib.sh"
scale=${SCALE:-50}
days=${DAYS:-7}
phases=${PHASES:-backup restore pgbackrest storage}
phase() { [[ " $phases " == *" $1 "* ]]; }
need restic restic; need pgbackrest pgbackrest
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-pg.XXXXXX")
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(free_port) rport=$(free_port)
mkdir "$work/pg" "$work/pgbr" "$work/pgr"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg" "$work/pgbr" "$work/pgr"
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$work/pgr/data" -m immediate stop >/dev/null 2>&1 || true
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cat > "$work/pgbackrest.conf" <<CONF
[global]
repo1-path=$work/pgbr/repo
repo1-retention-full=100
start-fast=y
log-path=$work/pgbr
lock-path=$work/pgbr
log-level-console=warn
log-level-file=off
[bench]
pg1-path=$work/pg/data
pg1-port=$port
pg1-socket-path=$work/pg
CONF
pgbr() { as_pg pgbackrest --config="$work/pgbackrest.conf" --stanza=bench "$@"; }
# Archiving is on from the start (archive_mode needs a restart) but a no-op until the
# pgBackRest measurements switch archive_command over with a reload.
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
# In postgresql.auto.conf, not on the command line, so that ALTER SYSTEM can change it.
echo "archive_command = '/bin/true'" | as_pg tee -a "$work/pg/data/postgresql.auto.conf" >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c archive_mode=on" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
url="postgres://postgres@127.0.0.1:$port"
"$pgbin/createdb" bench
"$pgbin/pgbench" -i -q -s "$scale" bench >/dev/null 2>&1
printf 'bench=postgres scale=%s database_bytes=%s\n' "$scale" "$("$pgbin/psql" -qAtc "SELECT pg_database_size('bench')" bench)"

lifeboat_plan "$work/lifeboat.toml" "$work/repo"
cat >> "$work/lifeboat.toml" <<TOML
[assets.bench]
type = "postgres"
url = "$url/bench"
TOML
lb() { "$bin" --config "$work/lifeboat.toml" -q "$@"; }
# Before each measurement: a checkpoint and the page cache written out, so that no tool pays
# for the writes of the one before it.
settle() { "$pgbin/psql" -qc CHECKPOINT bench; sync; }
line() { printf 'bench=postgres scale=%s tool=%s metric=%s' "$scale" "$1" "$2"; }

# Backups: each run into a fresh repository (a first backup).
if phase backup; then
pgdump=() gz=() rs=() lbb=()
for _ in $(seq "$runs"); do
  settle
  pgdump+=("$(measure "$pgbin/pg_dump" -Fc -f "$work/bench.dump" bench)")
  settle
  gz+=("$(measure sh -c "'$pgbin/pg_dump' bench | gzip > '$work/bench.sql.gz'")")
  rm -rf "$work/restic"; restic -q -r "$work/restic" init >/dev/null
  settle
  rs+=("$(measure sh -c "'$pgbin/pg_dump' -Fc -Z0 bench | restic -q -r '$work/restic' backup --stdin --stdin-filename bench.dump")")
  rm -rf "$work/repo"; lb init >/dev/null
  settle
  lbb+=("$(measure "$bin" --config "$work/lifeboat.toml" -q backup)")
done
emit "$(line pg_dump-Fc backup)" "${pgdump[@]}"
emit "$(line pg_dump-gzip backup)" "${gz[@]}"
emit "$(line restic backup)" "${rs[@]}"
emit "$(line lifeboat backup)" "${lbb[@]}"
fi

# Restores into a new database, each the same data; only Lifeboat checks rows as part of it.
fresh_db() { "$pgbin/dropdb" --if-exists "$1" 2>/dev/null; }
if phase restore; then
pr=() gp=() rr=() lr=()
for _ in $(seq "$runs"); do
  fresh_db r1; "$pgbin/createdb" r1
  settle
  pr+=("$(measure "$pgbin/pg_restore" -d r1 "$work/bench.dump")")
  fresh_db r2; "$pgbin/createdb" r2
  settle
  gp+=("$(measure sh -c "gunzip -c '$work/bench.sql.gz' | '$pgbin/psql' -q r2")")
  fresh_db r3; "$pgbin/createdb" r3
  settle
  rr+=("$(measure sh -c "restic -q -r '$work/restic' dump latest bench.dump | '$pgbin/pg_restore' -d r3")")
  fresh_db r4
  settle
  lr+=("$(measure "$bin" --config "$work/lifeboat.toml" -q restore bench --to "$url/r4")")
  for db in r1 r2 r3 r4; do fresh_db $db; done
done
emit "$(line pg_restore restore)" "${pr[@]}"
emit "$(line gunzip-psql restore)" "${gp[@]}"
emit "$(line restic restore)" "${rr[@]}"
emit "$(line lifeboat restore-verified)" "${lr[@]}"
fi

# pgBackRest: physical full backups of the whole cluster, then a restore into a new data
# directory started on another port until it answers a count of pgbench_accounts.
if phase pgbackrest; then
"$pgbin/psql" -qc "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push %p'" bench
"$pgbin/psql" -qc "SELECT pg_reload_conf()" bench >/dev/null
until "$pgbin/psql" -qAtc "SHOW archive_command" bench | grep -q pgbackrest; do sleep 0.1; done
pgbr stanza-create
pgbr check
want=$((scale * 100000))
pgbr_restore() {
  rm -rf "$work/pgr/data"
  pgbr --pg1-path="$work/pgr/data" restore
  as_pg "$pgbin/pg_ctl" -D "$work/pgr/data" -l "$work/pgr/log" -w -t 600 \
    -o "-p $rport -k $work/pgr -c listen_addresses=127.0.0.1 -c archive_mode=off" start
  got=$("$pgbin/psql" -p "$rport" -qAtc "SELECT count(*) FROM pgbench_accounts" bench)
  [ "$got" = "$want" ] || { echo "pgBackRest restore has $got accounts, expected $want" >&2; return 1; }
}
export -f pgbr pgbr_restore as_pg; export work pgbin rport want
bb=() brr=()
for _ in $(seq "$runs"); do
  settle
  bb+=("$(measure bash -c 'pgbr --type=full backup')")
  settle
  brr+=("$(measure bash -c pgbr_restore)")
  as_pg "$pgbin/pg_ctl" -D "$work/pgr/data" -m fast stop >/dev/null
done
emit "$(line pgbackrest backup) fulls=$runs stored_bytes=$(du -sb "$work/pgbr/repo" | cut -f1)" "${bb[@]}"
emit "$(line pgbackrest restore-started)" "${brr[@]}"
"$pgbin/psql" -qc "ALTER SYSTEM SET archive_command = '/bin/true'" bench
"$pgbin/psql" -qc "SELECT pg_reload_conf()" bench >/dev/null
fi

# Storage: a first backup, then DAYS days of pgbench load each followed by a backup.
phase storage || exit 0
rm -rf "$work/repo" "$work/restic" "$work/gz"; mkdir "$work/gz"
lb init >/dev/null
restic -q -r "$work/restic" init >/dev/null
for day in $(seq 0 "$days"); do
  [ "$day" = 0 ] || "$pgbin/pgbench" -n -c 2 -t 2000 bench >/dev/null 2>&1
  "$pgbin/pg_dump" bench | gzip > "$work/gz/day$day.sql.gz"
  "$pgbin/pg_dump" -Fc -Z0 bench | restic -q -r "$work/restic" backup --stdin --stdin-filename bench.dump >/dev/null
  lb backup >/dev/null
done
for t in gz restic repo; do
  name=$t; [ "$t" = gz ] && name=pg_dump-gzip; [ "$t" = repo ] && name=lifeboat
  printf 'bench=postgres scale=%s tool=%s metric=storage backups=%s stored_bytes=%s\n' "$scale" "$name" "$((days + 1))" "$(du -sb "$work/$t" | cut -f1)"
done
