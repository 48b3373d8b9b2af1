#!/usr/bin/env bash
# PostgreSQL side by side on one scratch cluster (127.0.0.1, free port, temp dir; never the
# machine's own server): a pgbench database of SCALE (default 50), then
#   backup:  bare `pg_dump -Fc` to a file, `pg_dump | gzip`, `pg_dump -Z0 | restic --stdin`,
#            `lifeboat backup`
#   restore: `pg_restore` from that file into a new database, `gunzip | psql`,
#            `restic dump | pg_restore`, `lifeboat restore --to` (created, loaded, rows checked)
#   storage: after DAYS (default 8) daily backups with pgbench load between them
# Medians of RUNS (default 3), one line per measurement. Usage: bench/postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-50}
runs=${RUNS:-3}
days=${DAYS:-8}
bin=${LIFEBOAT_BIN:-target/release/lifeboat}
[ -x "$bin" ] || cargo build --release -q -p lifeboat-cli
command -v restic >/dev/null || { echo "restic is needed: apt-get install restic" >&2; exit 1; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /var/tmp/lifeboat-bench-pg.XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$work/pg" && { [ "$(id -u)" = 0 ] && chown postgres "$work/pg"; true; }
cleanup() { as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres RESTIC_PASSWORD=bench BENCH_PW=bench
url="postgres://postgres@127.0.0.1:$port"
"$pgbin/createdb" bench
"$pgbin/pgbench" -i -q -s "$scale" bench >/dev/null 2>&1
"$pgbin/psql" -qAtc "SELECT pg_size_pretty(pg_database_size('bench'))" bench | sed "s/^/bench=postgres scale=$scale database_size=/"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local s e; s=$(now); "$@" >/dev/null 2>&1; e=$(now); awk "BEGIN{print $e - $s}"; }
report() { printf 'bench=postgres scale=%s tool=%s metric=%s median_s=%.2f runs=%d\n' "$scale" "$1" "$2" "$(printf '%s\n' "${@:3}" | median)" "$runs"; }
plan() {
  cat > "$work/lifeboat.toml" <<TOML
version = 1
[plan]
name = "bench"
[repositories.main]
url = "$work/repo"
password-env = "BENCH_PW"
[assets.bench]
type = "postgres"
url = "$url/bench"
TOML
}
fresh_db() { "$pgbin/dropdb" --if-exists "$1"; }

# Backups: each run into a fresh repository (a first backup).
pgdump=() gz=() rs=() lb=()
for _ in $(seq "$runs"); do
  pgdump+=("$(timed "$pgbin/pg_dump" -Fc -f "$work/bench.dump" bench)")
  gz+=("$(timed sh -c "'$pgbin/pg_dump' bench | gzip > '$work/bench.sql.gz'")")
  rm -rf "$work/restic"; restic -q -r "$work/restic" init >/dev/null
  rs+=("$(timed sh -c "'$pgbin/pg_dump' -Fc -Z0 bench | restic -q -r '$work/restic' backup --stdin --stdin-filename bench.dump")")
  rm -rf "$work/repo"; plan; "$bin" --config "$work/lifeboat.toml" -q init >/dev/null
  lb+=("$(timed "$bin" --config "$work/lifeboat.toml" -q backup)")
done
report pg_dump-Fc backup "${pgdump[@]}"
report pg_dump-gzip backup "${gz[@]}"
report restic backup "${rs[@]}"
report lifeboat backup "${lb[@]}"

# Restores into a new database, each the same data.
pr=() gp=() rr=() lr=()
for _ in $(seq "$runs"); do
  fresh_db r1; "$pgbin/createdb" r1
  pr+=("$(timed "$pgbin/pg_restore" -d r1 "$work/bench.dump")")
  fresh_db r2; "$pgbin/createdb" r2
  gp+=("$(timed sh -c "gunzip -c '$work/bench.sql.gz' | '$pgbin/psql' -q r2")")
  fresh_db r3; "$pgbin/createdb" r3
  rr+=("$(timed sh -c "restic -q -r '$work/restic' dump latest bench.dump | '$pgbin/pg_restore' -d r3")")
  fresh_db r4
  lr+=("$(timed "$bin" --config "$work/lifeboat.toml" -q restore bench --to "$url/r4")")
done
report pg_restore restore "${pr[@]}"
report gunzip-psql restore "${gp[@]}"
report restic restore "${rr[@]}"
report lifeboat restore-verified "${lr[@]}"
for db in r1 r2 r3 r4; do fresh_db $db; done

# Storage after DAYS daily backups with pgbench load between them.
rm -rf "$work/repo" "$work/restic" "$work/gz"; mkdir "$work/gz"
plan; "$bin" --config "$work/lifeboat.toml" -q init >/dev/null
restic -q -r "$work/restic" init >/dev/null
for day in $(seq "$days"); do
  "$pgbin/pgbench" -n -c 2 -t 2000 bench >/dev/null 2>&1
  "$pgbin/pg_dump" bench | gzip > "$work/gz/day$day.sql.gz"
  "$pgbin/pg_dump" -Fc -Z0 bench | restic -q -r "$work/restic" backup --stdin --stdin-filename bench.dump >/dev/null
  "$bin" --config "$work/lifeboat.toml" -q backup >/dev/null
done
for t in gz restic repo; do
  name=$t; [ "$t" = gz ] && name=pg_dump-gzip; [ "$t" = repo ] && name=lifeboat
  printf 'bench=postgres scale=%s tool=%s metric=storage_after_%s_days bytes=%s\n' "$scale" "$name" "$days" "$(du -sb "$work/$t" | cut -f1)"
done
