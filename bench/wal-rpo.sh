#!/usr/bin/env bash
# The RPO a crash under load leaves, per way of getting the WAL off the server:
#   lifeboat-archive  archive_command = lifeboat wal push, archive_timeout = 30s
#   lifeboat-stream   wal = "stream" (pg_receivewal on a slot), stream-interval = 5s; the
#                     stream outlives the crash (the database server died, Lifeboat's host did not)
#   lifeboat-stream-host-lost  the same, with the stream and its pg_receivewal killed at the
#                     crash too (both on one host that died): only what was stored before counts
#   pgbackrest        archive_command = pgbackrest archive-push (synchronous), archive_timeout = 30s
# Each run: a fresh pgbench scale-10 cluster and a base backup, then `pgbench -c 4` for LOAD
# seconds (60) while a writer commits a row holding clock_timestamp() every 100 ms; then the
# server is killed (`pg_ctl -m immediate`: nothing more is archived) and its data directory
# deleted. The cluster is restored to the latest point into a new directory and started; the
# RPO is the crash's time minus the newest row restored. Medians of RUNS (3).
# Usage: bench/wal-rpo.sh
source "$(dirname "$0")/lib.sh"
need pgbackrest pgbackrest
load=${LOAD:-60}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/lifeboat-bench-rpo.XXXXXX")
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  # Only the script itself cleans up, not a subshell that inherited the trap.
  [ "$BASHPID" = "$$" ] || return 0
  for d in "$work"/*/data "$work"/*/restored; do
    as_pg "$pgbin/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  pkill -f "$work/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# one MODE: prints the RPO in seconds.
one() {
  local mode=$1 dir port
  dir=$(as_pg mktemp -d "$work/$mode.XXXX")
  port=$(free_port)
  as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
  local archive=""
  case $mode in
    lifeboat-archive) archive="$bin --config $dir/lifeboat.toml -q wal push main %p" ;;
    pgbackrest) archive="pgbackrest --config=$dir/pgbackrest.conf --stanza=bench archive-push %p" ;;
  esac
  {
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "listen_addresses = '127.0.0.1'"
    echo "max_wal_size = 2GB"
    if [ -n "$archive" ]; then
      echo "archive_mode = on"
      echo "archive_command = '$archive'"
      echo "archive_timeout = 30s"
    fi
  } | as_pg tee -a "$dir/data/postgresql.auto.conf" >/dev/null
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  case $mode in
    lifeboat-*)
      lifeboat_plan "$dir/lifeboat.toml" "$dir/repo"
      printf '[assets.main]\ntype = "postgres-cluster"\nurl = "%s"\n' "$url" >> "$dir/lifeboat.toml"
      case $mode in lifeboat-stream*) printf 'wal = "stream"\nstream-interval = "5s"\n' >> "$dir/lifeboat.toml" ;; esac
      ;;
    pgbackrest)
      cat > "$dir/pgbackrest.conf" <<CONF
[global]
repo1-path=$dir/pgbr
log-path=$dir
lock-path=$dir
log-level-console=warn
log-level-file=off
start-fast=y
[bench]
pg1-path=$dir/data
pg1-port=$port
pg1-socket-path=$dir
CONF
      ;;
  esac
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
  "$pgbin/pgbench" -i -q -s 10 postgres >/dev/null 2>&1
  "$pgbin/psql" -qAtc "CREATE TABLE marks (t timestamptz)" postgres
  local stream=""
  case $mode in
    lifeboat-*)
      as_pg env BENCH_PW="$BENCH_PW" "$bin" --config "$dir/lifeboat.toml" -q init >/dev/null
      if [ "$mode" != lifeboat-archive ]; then
        as_pg env BENCH_PW="$BENCH_PW" "$bin" --config "$dir/lifeboat.toml" -q wal stream main 2>"$dir/stream.log" &
        stream=$!
        until [ "$("$pgbin/psql" -qAtc "SELECT count(*) FROM pg_replication_slots WHERE active" postgres)" = 1 ]; do sleep 0.2; done
      fi
      as_pg env BENCH_PW="$BENCH_PW" "$bin" --config "$dir/lifeboat.toml" -q backup main >/dev/null
      ;;
    pgbackrest)
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench --type=full backup >/dev/null
      ;;
  esac
  ( while :; do "$pgbin/psql" -qAtc "INSERT INTO marks VALUES (clock_timestamp())" postgres >/dev/null 2>&1 || true; sleep 0.1; done ) &
  local writer=$!
  "$pgbin/pgbench" -c 4 -j 2 -T "$load" postgres >/dev/null 2>&1
  local crashed
  crashed=$(date +%s.%N)
  if [ "$mode" = lifeboat-stream-host-lost ]; then
    pkill -KILL -f "$dir/lifeboat.toml -q wal stream" || true
    pkill -KILL -f "pg_receivewal -D $dir" || true
  fi
  as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null
  kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
  rm -rf "$dir/data"
  # A stream outlives the crash; stopped here, it stores what it received before it.
  if [ -n "$stream" ]; then
    pkill -TERM -f "$dir/lifeboat.toml -q wal stream" || true
    wait "$stream" || true
  fi
  case $mode in
    lifeboat-*) as_pg env BENCH_PW="$BENCH_PW" "$bin" --config "$dir/lifeboat.toml" -q restore main --latest --to "$dir/restored" >/dev/null ;;
    pgbackrest)
      as_pg mkdir -m 700 "$dir/restored"
      as_pg pgbackrest --config="$dir/pgbackrest.conf" --stanza=bench --pg1-path="$dir/restored" restore >/dev/null
      ;;
  esac
  local port2
  port2=$(free_port)
  as_pg "$pgbin/pg_ctl" -D "$dir/restored" -l "$dir/restored.log" -w -t 600 \
    -o "-p $port2 -k $dir -c archive_mode=off" start >/dev/null
  until [ "$("$pgbin/psql" -p "$port2" -qAtc "SELECT pg_is_in_recovery()" postgres 2>/dev/null)" = f ]; do sleep 0.2; done
  local newest
  newest=$("$pgbin/psql" -p "$port2" -qAtc "SELECT extract(epoch FROM max(t)) FROM marks" postgres)
  as_pg "$pgbin/pg_ctl" -D "$dir/restored" -m fast stop >/dev/null
  awk -v c="$crashed" -v n="$newest" 'BEGIN { printf "%.1f\n", c - n }'
  rm -rf "$dir"
}

for mode in ${MODES:-lifeboat-stream lifeboat-stream-host-lost lifeboat-archive pgbackrest}; do
  samples=()
  for _ in $(seq "$runs"); do
    # Not in a command substitution: its subshell would run the EXIT trap's cleanup.
    one "$mode" > "$work/rpo"
    samples+=("$(cat "$work/rpo")")
  done
  printf 'bench=wal-rpo mode=%s load_s=%s rpo_s=%s samples=%s\n' "$mode" "$load" \
    "$(printf '%s\n' "${samples[@]}" | median)" "$(IFS=,; echo "${samples[*]}")"
done
