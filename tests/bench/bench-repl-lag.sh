#!/usr/bin/env bash
# repl-lag vs check_postgres --action=hot_standby_delay on the same primary + streaming standby:
# wall time of one whole check process (start, connect, query, verdict), averaged over N runs.
# Needs a release build (make bench builds it) and check_postgres (Debian: check-postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=${N:-50}
BIN=${REPL_LAG:-target/release/repl-lag}
[ -x "$BIN" ] || { echo "bench-repl-lag: $BIN is missing (cargo build --release)"; exit 1; }
if ! command -v check_postgres >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq check-postgres >/dev/null
  else
    echo "bench-repl-lag: check_postgres is missing; as root run: apt-get install -y check-postgres"; exit 1
  fi
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
DIR=$(mktemp -d /tmp/pgdr-bench-lag.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
cleanup() {
  for d in "$DIR/s" "$DIR/p"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PP=$(free_port); SP=$(free_port)
as_pg "$PGBIN/initdb" -D "$DIR/p" -U postgres -A trust -N >/dev/null
as_pg tee -a "$DIR/p/postgresql.conf" >/dev/null <<CONF
port = $PP
unix_socket_directories = '$DIR'
listen_addresses = ''
fsync = off
wal_level = replica
CONF
as_pg "$PGBIN/pg_ctl" -D "$DIR/p" -l "$DIR/p.log" -w start >/dev/null
as_pg "$PGBIN/pg_basebackup" -D "$DIR/s" -X stream -R -c fast -d "host=$DIR port=$PP user=postgres application_name=s1"
echo "port = $SP" | as_pg tee -a "$DIR/s/postgresql.conf" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/s" -l "$DIR/s.log" -w start >/dev/null
psql -q "host=$DIR port=$PP user=postgres" -c "create table t as select generate_series(1,1000) x" >/dev/null
sleep 1

# Average milliseconds of one run of "$@" (output discarded; exit codes 0-3 are verdicts).
avg_ms() {
  local start end i
  "$@" >/dev/null 2>&1 || true
  start=$(date +%s%N)
  for ((i = 0; i < N; i++)); do "$@" >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  echo $(( (end - start) / N / 1000 ))
}
P="host=$DIR port=$PP user=postgres dbname=postgres"
S="host=$DIR port=$SP user=postgres dbname=postgres"
ours_p=$(avg_ms "$BIN" -d "$P" --warn-bytes 16MB --crit-bytes 1GB --min-standbys 1)
ours_ps=$(avg_ms "$BIN" -d "$P" -d "$S" --warn-bytes 16MB --crit-bytes 1GB --min-standbys 1)
peer=$(avg_ms check_postgres --action=hot_standby_delay --dbhost="$DIR,$DIR" --dbport="$PP,$SP" \
  --dbuser=postgres --warning=16777216 --critical=1073741824)
# One sample of each verdict, for the record.
echo "repl-lag:       $("$BIN" -d "$P" -d "$S" | head -c 160)..."
echo "check_postgres: $(check_postgres --action=hot_standby_delay --dbhost="$DIR,$DIR" --dbport="$PP,$SP" --dbuser=postgres --warning=16777216 --critical=1073741824 | head -c 160)"
printf '\n%-44s %14s %14s %8s\n' "one check process, mean of $N runs" "repl-lag (us)" "check_pg (us)" "ratio"
awk -v a="$ours_p" -v b="$peer" 'BEGIN { printf "%-44s %14d %14d %7.3fx\n", "primary only (repl-lag) vs hot_standby_delay", a, b, a / b }'
awk -v a="$ours_ps" -v b="$peer" 'BEGIN { printf "%-44s %14d %14d %7.3fx\n", "primary+standby (both tools see the pair)", a, b, a / b }'
for pair in "primary only:$ours_p" "primary + standby:$ours_ps"; do
  r=$(bench_ratio "${pair#*:}" "$peer" 3)
  bench_row repl-lag "one check process, ${pair%%:*} (mean of $N)" "${pair#*:} us" "check_postgres hot_standby_delay" "$peer us" \
    "$r" "<= 0.5x" "$(bench_le "${r%x}" 0.5)"
done
