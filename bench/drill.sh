#!/usr/bin/env bash
# A drill of a four-asset plan, as issue 4 sets it: a pgbench scale-SCALE (default 10)
# PostgreSQL database, a 20k-row SQLite file, 10k Redis keys and 100 MB of files, backed up
# once, then `lifeboat drill` timed (medians of RUNS, default 3). Servers run on 127.0.0.1 at
# free ports in a temp dir, never the machine's own. Usage: bench/drill.sh
source "$(dirname "$0")/lib.sh"
scale=${SCALE:-10}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /var/tmp/lifeboat-bench-drill.XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgport=$(free_port) redisport=$(free_port)
mkdir "$work/pg" "$work/redis" "$work/files"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$work/redis/pid" ] && kill "$(cat "$work/redis/pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
"$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres bench
"$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres -i -q -s "$scale" bench >/dev/null 2>&1
redis-server --bind 127.0.0.1 --port "$redisport" --save "" --appendonly no --dir "$work/redis" \
  --daemonize yes --pidfile "$work/redis/pid" --logfile "$work/redis/log"
for _ in $(seq 50); do redis-cli -p "$redisport" ping >/dev/null 2>&1 && break; sleep 0.1; done
seq 1 10000 | awk '{print "SET key:" $1 " value-" $1}' | redis-cli -p "$redisport" >/dev/null
python3 - "$work/hub.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, name TEXT, payload TEXT)")
db.executemany("INSERT INTO events(name, payload) VALUES (?, ?)", ((f"e{i}", "x" * 200) for i in range(20000)))
db.commit()
PY
for i in $(seq 1 100); do head -c 1048576 /dev/urandom > "$work/files/blob$i"; done

cat > "$work/lifeboat.toml" <<TOML
version = 1
[plan]
name = "drill-bench"
rto = "1m"
[repositories.main]
url = "$work/repo"
password-env = "BENCH_PW"
[assets.db]
type = "postgres"
url = "postgres://postgres@127.0.0.1:$pgport/bench"
priority = "P0"
checks = ["SELECT count(*) = $((scale * 100000)) FROM pgbench_accounts"]
[assets.hub]
type = "sqlite"
path = "$work/hub.db"
checks = ["SELECT count(*) = 20000 FROM events"]
[assets.cache]
type = "redis"
url = "redis://127.0.0.1:$redisport"
[assets.files]
type = "files"
paths = ["$work/files"]
TOML
"$bin" --config "$work/lifeboat.toml" -q init >/dev/null
"$bin" --config "$work/lifeboat.toml" -q backup >/dev/null

for parallel in 1 2; do
  times=()
  for _ in $(seq "$runs"); do
    times+=("$(LIFEBOAT_SPOOL_DIR=$work TMPDIR=$work measure "$bin" --config "$work/lifeboat.toml" -q \
      drill --parallel "$parallel" --report "$work/drill.json")")
  done
  emit "bench=drill scale=$scale parallel=$parallel" "${times[@]}"
done
python3 - "$work/drill.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for a in r["assets"]:
    p = a["phases"]
    print(f'bench=drill asset={a["asset"]} rto_s={a["rto_secs"]:.2f} fetch_s={p["fetch"]:.2f} restore_s={p["restore"]:.2f} verify_s={p["verify"]:.2f} passed={a["ok"]}')
PY
