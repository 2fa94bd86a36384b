#!/usr/bin/env bash
# Does the archiver keep up? (issue 19, "WAL push": under a full-speed pgbench the `.ready`
# backlog stays bounded; its maximum next to pgBackRest async's.) One primary (shared_buffers
# 256MB, max_wal_size 1GB, synchronous_commit off for pgbench, wal_compression off) runs
# pgbench at full speed (CLIENTS clients, DURATION s) once per variant, the variants taking
# turns on the same server:
#   pgdr        archive_command 'wal-archive push %p --repo R' (a local repository, zstd);
#   pgbackrest  'pgbackrest archive-push %p' with archive-async=y, spool-path and
#               [global:archive-push] process-max=2 (its user guide's asynchronous archiving),
#               compress-type=zst, compress-level=1, a local repository.
# Every 0.2 s the `.ready` files in pg_wal/archive_status are counted. Reported per variant:
# the segments pgbench wrote, the maximum backlog, the backlog when pgbench ended, and the
# seconds from then until it was empty.
# Needs root (the server runs as postgres), pgbackrest, a release build (PGDR_BIN, default
# $CARGO_TARGET_DIR/release or target/release).
# Knobs: DURATION (60 s), CLIENTS (4), SCALE (30), KEEP=1 (leave the work directory in place).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${PGDR_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-30}
[ -x "$BIN/wal-archive" ] || { echo "bench-wal-backlog: build first: cargo build --release (or set PGDR_BIN)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-wal-backlog: needs root; skipped"; exit 0; }
command -v pgbackrest >/dev/null || { echo "bench-wal-backlog: pgbackrest not installed; skipped"; exit 0; }
W=$(mktemp -d /tmp/pgdr-bwb.XXXXXX)
chmod 755 "$W"; chown postgres: "$W"
P=$W/primary
pg() { runuser -u postgres -- "$@"; }
say() { echo "bench-wal-backlog: $*" >&2; }
psqlq() { bench_psql "$PORT" "$W" "$1"; }
cleanup() {
  set +e
  [ -f "$P/postmaster.pid" ] && pg "$PGBIN/pg_ctl" -D "$P" -m immediate -w stop >/dev/null 2>&1
  # pgBackRest's asynchronous archive-push process, if still running.
  pkill -f -- "--config=$W/" 2>/dev/null
  rm -rf "$W"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

PORT=$(bench_port)
repo=$W/repo
pg mkdir -p "$W/pgbr" "$W/pgbr-run/spool"
bench_pgbr_conf "$W/pgbr.conf" "$P" "$PORT" "$W" "$W/pgbr-run/lock" "$W/pgbr-run/spool" archive-push <<<"repo1-path=$W/pgbr"
PGBR="pgbackrest --config=$W/pgbr.conf --stanza=b"
say "pgbench -i -s $SCALE"
bench_archiving_primary "$P" "$PORT" "$W" "$W/primary.log" "$repo" "$W/pgbr.conf" "$SCALE" --no-sync <<CONF
shared_buffers = 256MB
max_wal_size = 1GB
checkpoint_timeout = 5min
wal_compression = off
archive_mode = on
archive_command = '/bin/true'
CONF

ready() { find "$P/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l; }
drained() {
  local i
  for i in $(seq 1 1200); do
    [ "$(ready)" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# run VARIANT ARCHIVE_COMMAND: prints "segments max at_end drain_seconds".
run() {
  local v=$1 cmd=$2 max=0 n start_lsn end_lsn pid t0 at_end
  psqlq "ALTER SYSTEM SET archive_command = '${cmd//\'/\'\'}'" >/dev/null
  psqlq "SELECT pg_reload_conf()" >/dev/null
  psqlq "SELECT pg_switch_wal()" >/dev/null
  drained || { say "$v: the backlog before the run did not drain"; return 1; }
  psqlq checkpoint >/dev/null
  start_lsn=$(psqlq "SELECT pg_current_wal_lsn()")
  PGOPTIONS="-c synchronous_commit=off" pg "$PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$DURATION" \
    -h "$W" -p "$PORT" -U postgres postgres >"$W/pgbench-$v.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    n=$(ready)
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.2
  done
  wait "$pid" || { say "$v: pgbench failed: $(tail -n 2 "$W/pgbench-$v.log")"; return 1; }
  end_lsn=$(psqlq "SELECT pg_current_wal_lsn()")
  at_end=$(ready)
  psqlq "SELECT pg_switch_wal()" >/dev/null
  t0=$(date +%s.%N)
  drained || { say "$v: the backlog did not drain within 120 s"; return 1; }
  local segs
  segs=$(psqlq "SELECT ceil(pg_wal_lsn_diff('$end_lsn', '$start_lsn') / 16777216.0)::int")
  echo "$segs $max $at_end $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

declare -A res
for v in pgdr pgbackrest; do
  case $v in
    pgdr) cmd="$BIN/wal-archive push %p --repo $repo" ;;
    pgbackrest) cmd="$PGBR archive-push %p" ;;
  esac
  say "$v: pgbench -c $CLIENTS for $DURATION s, archive_command = $cmd"
  res[$v]=$(run "$v" "$cmd")
  say "$v: segments written, max .ready, .ready at the end, seconds to drain: ${res[$v]}"
done
failed=$(psqlq "SELECT failed_count FROM pg_stat_archiver")
[ "$failed" = 0 ] || say "pg_stat_archiver.failed_count = $failed"

read -r seg_d max_d end_d drain_d <<<"${res[pgdr]}"
read -r seg_b max_b end_b drain_b <<<"${res[pgbackrest]}"
echo
echo "WAL archiving under pgbench -c $CLIENTS for $DURATION s (scale $SCALE), load $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after"
printf '%-12s %10s %10s %12s %10s\n' variant segments max.ready ready.at.end drain.s
printf '%-12s %10s %10s %12s %10s\n' pgdr "$seg_d" "$max_d" "$end_d" "$drain_d"
printf '%-12s %10s %10s %12s %10s\n' pgbackrest "$seg_b" "$max_b" "$end_b" "$drain_b"
# Bounded: the backlog at most the peer's (plus one segment of sampling noise) and drained.
verdict=$(awk -v a="$max_d" -v b="$max_b" 'BEGIN { print (a + 0 <= b + 1) ? "yes" : "no" }')
bench_row wal-backlog "max .ready backlog, pgbench -c $CLIENTS ${DURATION}s ($seg_d vs $seg_b segments)" \
  "$max_d" "pgbackrest async" "$max_b" "-" "<= peer's" "$verdict"
bench_row wal-backlog "seconds to drain the backlog after pgbench" "$drain_d" "pgbackrest async" "$drain_b" \
  "$(bench_ratio "$drain_d" "$drain_b")" "-" "-"
