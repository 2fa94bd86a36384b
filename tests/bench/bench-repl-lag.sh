#!/usr/bin/env bash
# repl-lag vs check_postgres --action=hot_standby_delay on the same primary + streaming standby:
# wall time of one whole check process (start, connect, query, verdict), median of N runs, the
# two tools taking turns so that both see the same load. Goal (issue 19): one check of the pair
# <= 0.1x check_postgres. Also the fixed costs: process start alone (--version), and a password
# in -d (masked in the process title in place, no second exec).
# Needs a release build (make bench builds it) and check_postgres (Debian: check-postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=${N:-41}
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

# One run of "$@" in microseconds (output discarded; exit codes 0-3 are verdicts).
us() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 ))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
P="host=$DIR port=$PP user=postgres dbname=postgres"
S="host=$DIR port=$SP user=postgres dbname=postgres"
peer() {
  check_postgres --action=hot_standby_delay --dbhost="$DIR,$DIR" --dbport="$PP,$SP" \
    --dbuser=postgres --warning=16777216 --critical=1073741824
}
pair() { "$BIN" -d "$P" -d "$S" --warn-bytes 16MB --crit-bytes 1GB --min-standbys 1; }
primary() { "$BIN" -d "$P" --warn-bytes 16MB --crit-bytes 1GB --min-standbys 1; }
# trust ignores the password; what is measured is repl-lag masking it in its process title.
with_password() { "$BIN" -d "$P password=not-shown" -d "$S password=not-shown" --min-standbys 1; }
start_only() { "$BIN" --version; }
samples=$(mktemp -d /tmp/pgdr-bench-lag-samples.XXXXXX)
trap 'rm -rf "$samples"; cleanup' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for f in peer pair primary with_password start_only; do $f >/dev/null 2>&1 || true; done # warm up
for ((i = 0; i < N; i++)); do
  for f in peer pair primary with_password start_only; do us $f >> "$samples/$f"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for f in peer pair primary with_password start_only; do
  declare "med_$f=$(median < "$samples/$f")"
done
# One sample of each verdict, for the record.
echo "repl-lag:       $(pair | head -c 160)..."
echo "check_postgres: $(peer | head -c 160)"
echo "load average (1, 5, 15 min): $load_before before, $load_after after"
printf '\n%-52s %12s\n' "one whole process, median of $N (tools taking turns)" "us"
printf '%-52s %12d\n' "check_postgres hot_standby_delay (primary + standby)" "$med_peer" \
  "repl-lag -d primary -d standby" "$med_pair" \
  "repl-lag -d primary" "$med_primary" \
  "repl-lag -d primary -d standby, password in -d" "$med_with_password" \
  "repl-lag --version (process start, no server)" "$med_start_only"
r=$(bench_ratio "$med_pair" "$med_peer" 3)
echo "ratio, the pair: $r (goal <= 0.1x)"
bench_row repl-lag "one check of primary + standby, whole process (median of $N)" "$med_pair us" \
  "check_postgres hot_standby_delay" "$med_peer us" "$r" "<= 0.1x" "$(bench_le "${r%x}" 0.1)"
bench_row repl-lag "the same with a password in -d (title masked in place)" "$med_with_password us" \
  "check_postgres hot_standby_delay" "$med_peer us" "$(bench_ratio "$med_with_password" "$med_peer" 3)" "-"
bench_row repl-lag "primary only (median of $N)" "$med_primary us" \
  "check_postgres hot_standby_delay" "$med_peer us" "$(bench_ratio "$med_primary" "$med_peer" 3)" "-"
bench_row repl-lag "process start alone (--version)" "$med_start_only us" "-" "-" "-" "-"
