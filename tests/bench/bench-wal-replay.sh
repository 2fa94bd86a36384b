#!/usr/bin/env bash
# Does recovery through restore_command wait? (issue 19, "WAL get"). A primary archives
# through wal-archive AND pgBackRest (compress-type=zst, compress-level=1) and a plain cp;
# a cold copy of it is the base backup; then pgbench writes SEGMENTS (64) real 16 MiB
# segments (1 GiB) after the copy's checkpoint. Each variant replays them from a fresh copy of
# the base backup, to recovery_target_lsn = the start of the segment after them (all SEGMENTS
# replayed), recovery_target_action=pause, side by side in one run:
#   local     the segments placed in the copy's pg_wal beforehand, restore_command 'false'
#             (the floor);
#   prefetch  restore_command 'wal-archive get %f %p --prefetch PREFETCH';
#   pgbackrest  pgBackRest archive-get with archive-async=y, spool-path and the user guide's
#             [global:archive-get] process-max=2 (archive-get-queue-max: its default, 128 MiB);
#   get       plain 'wal-archive get %f %p' (no prefetch), for information;
#   prefetch-setsid  'setsid -w wal-archive get ... --prefetch PREFETCH', for information: get and
#             its prefetch worker in a session of their own, as pgBackRest's async process is.
#             Under the kernel's autogroup scheduling (sched_autogroup_enabled=1, a server not in
#             a cgroup of its own) each session shares CPU as one: every PostgreSQL process is a
#             session (postmaster.c), restore_command and the worker get started by it run in
#             the startup process's, so on a busy machine the worker's decompression is taken
#             from replay's share; pgBackRest's detached async process has its own.
# Timed from `pg_ctl start` to the server log's "recovery stopping after WAL location" line
# (log_line_prefix %m, milliseconds), then checked: paused, pg_last_wal_replay_lsn() at or past
# the target. Every server has the same settings (shared_buffers etc. set explicitly below).
# Median of ROUNDS rounds, the order reversed every other round. With TRACE=1 (default), one
# more run of each variant through a wrapper that logs each restore_command call (start, end,
# served from the spool or not): the time replay waited in restore_command, per get, and the
# time it replayed between calls.
# Needs root (servers run as postgres), pgbackrest, a release build (PGDR_BIN, default
# $CARGO_TARGET_DIR/release or target/release).
# Knobs: SEGMENTS (64), ROUNDS (3), SCALE (15), PREFETCH (8), SHARED_BUFFERS (256MB),
# TRACE (1), TRACE_DIR (copy the traces and server logs there), WAIT (900 s per replay), KEEP=1
# (leave the work directory in place).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${PGDR_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
N=${SEGMENTS:-64}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-15}
PREFETCH=${PREFETCH:-8}
SHARED_BUFFERS=${SHARED_BUFFERS:-256MB}
TRACE=${TRACE:-1}
WAIT=${WAIT:-900}
[ -x "$BIN/wal-archive" ] || { echo "bench-wal-replay: build first: cargo build --release (or set PGDR_BIN)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-wal-replay: needs root; skipped"; exit 0; }
command -v pgbackrest >/dev/null || { echo "bench-wal-replay: pgbackrest not installed; skipped"; exit 0; }
W=$(mktemp -d /tmp/pgdr-bwr.XXXXXX)
chmod 755 "$W"; chown postgres: "$W"
# The primary (max_wal_size 4GB), the archived WAL three times and a copy at a time.
avail=$(df -Pm "$W" | awk 'NR == 2 { print $4 }')
if [ "${avail:-0}" -lt $((N * 16 * 3 + 1024)) ]; then
  rmdir "$W"; echo "bench-wal-replay: $avail MB free in /tmp, $((N * 16 * 3 + 1024)) needed"; exit 1
fi
P=$W/primary
R=$W/replay
pg() { runuser -u postgres -- "$@"; }
say() { echo "bench-wal-replay: $*" >&2; }
now() { date +%s.%N; }
psqlq() { bench_psql "$1" "$W" "$2"; }
# Processes of this run still alive (prefetch workers, pgBackRest's async archive-get) are
# found by the work directory in their command line and ended by pid.
stragglers() { pgrep -f -- "$W/" || true; }
settle() {
  local i pids
  for i in $(seq 1 300); do
    pids=$(stragglers)
    [ -z "$pids" ] && return 0
    [ "$i" = 300 ] && { say "ending leftover processes $pids"; kill $pids 2>/dev/null || true; }
    sleep 0.1
  done
}
cleanup() {
  set +e
  for d in "$P" "$R"; do
    [ -f "$d/postmaster.pid" ] && pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  settle
  rm -rf "$W"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The primary, archiving to the three places.
PORT=$(bench_port)
repo=$W/repo
pg mkdir -p "$W/wal" "$W/pgbr" "$W/pgbr-run/spool"
bench_pgbr_conf "$W/pgbr-push.conf" "$P" "$PORT" "$W" "$W/pgbr-run/lock-push" "$W/pgbr-run/spool" <<<"repo1-path=$W/pgbr"
bench_pgbr_conf "$W/pgbr-get.conf" "$P" "$PORT" "$W" "$W/pgbr-run/lock-get" "$W/pgbr-run/spool" archive-get <<<"repo1-path=$W/pgbr"
PGBR_PUSH="pgbackrest --config=$W/pgbr-push.conf --stanza=b"
say "pgbench -i -s $SCALE"
bench_archiving_primary "$P" "$PORT" "$W" "$W/primary.log" "$repo" "$W/pgbr-push.conf" "$SCALE" --no-sync <<CONF
shared_buffers = $SHARED_BUFFERS
max_wal_size = 4GB
checkpoint_timeout = 1h
archive_mode = on
archive_command = '$BIN/wal-archive push %p --repo $repo && $PGBR_PUSH archive-push %p && cp %p $W/wal/%f'
CONF
psqlq "$PORT" checkpoint >/dev/null

# The base backup: a cold copy (the shutdown checkpoint is where replay starts), pg_wal empty.
pg "$PGBIN/pg_ctl" -D "$P" -m fast -w stop >/dev/null
cp -a "$P" "$W/base"
find "$W/base/pg_wal" -maxdepth 1 -type f -delete
rm -f "$W/base/pg_wal/archive_status/"*
redo=$(pg "$PGBIN/pg_controldata" "$W/base" | sed -n "s/^Latest checkpoint's REDO WAL file: *//p")
[ ${#redo} = 24 ] || { echo "bench-wal-replay: no REDO WAL file in pg_controldata"; exit 1; }
tli=${redo:0:8}
first=$(( 16#${redo:8:8} * 256 + 16#${redo:16:8} ))
seg_name() { printf '%s%08X%08X' "$tli" $(( $1 / 256 )) $(( $1 % 256 )); }
last=$(seg_name $((first + N)))
target=$(( (first + N) * 16777216 ))
TARGET=$(printf '%X/%X' $((target >> 32)) $((target & 0xFFFFFFFF)))

# SEGMENTS segments after the checkpoint, and the first record of the next one, all archived.
pg "$PGBIN/pg_ctl" -D "$P" -l "$W/primary.log" -w start >/dev/null
say "pgbench until $last (the target $TARGET) is archived"
# A checkpoint before every pgbench run: the WAL holds full-page images, as a busy server's does.
until [ "$(psqlq "$PORT" "select pg_current_wal_insert_lsn() > '$TARGET'::pg_lsn")" = t ]; do
  psqlq "$PORT" checkpoint >/dev/null
  PGOPTIONS="-c synchronous_commit=off" pg "$PGBIN/pgbench" -n -c 4 -j 2 -T 10 -h "$W" -p "$PORT" -U postgres postgres >/dev/null 2>&1
done
psqlq "$PORT" "select pg_switch_wal()" >/dev/null
until [ "$(psqlq "$PORT" "select coalesce(last_archived_wal >= '$last', false) from pg_stat_archiver")" = t ]; do sleep 0.5; done
pg "$PGBIN/pg_ctl" -D "$P" -m fast -w stop >/dev/null
# The primary is done with (its pg_wal holds up to max_wal_size): room on the disk.
rm -rf "$P"
segs=()
for s in $(seq "$first" $((first + N))); do segs+=("$(seg_name "$s")"); done
for s in "${segs[@]}"; do [ -f "$W/wal/$s" ] || { echo "bench-wal-replay: $s was not archived"; exit 1; }; done
sync
say "replaying ${segs[0]} .. ${segs[N-1]} ($N segments) to $TARGET"

# restore_command's trace wrapper: LOG then the command; appends "start end exit from_prefetch".
cat > "$W/trace.sh" <<'SH'
#!/bin/bash
log=$1; shift
s=$EPOCHREALTIME
out=$("$@"); rc=$?
case $out in *'"from_prefetch":true'*) f=spool ;; *'"from_prefetch":false'*) f=archive ;; *) f=- ;; esac
echo "$s $EPOCHREALTIME $rc $f" >> "$log"
exit $rc
SH
chmod 755 "$W/trace.sh"

restore_command() {
  case $1 in
    local) echo "false" ;;
    prefetch) echo "$BIN/wal-archive get %f %p --repo $repo --prefetch $PREFETCH" ;;
    get) echo "$BIN/wal-archive get %f %p --repo $repo" ;;
    prefetch-setsid) echo "setsid -w $BIN/wal-archive get %f %p --repo $repo --prefetch $PREFETCH" ;;
    pgbackrest) echo "pgbackrest --config=$W/pgbr-get.conf --stanza=b --pg1-path=$R archive-get %f \"%p\"" ;;
  esac
}

# replay VARIANT [TRACELOG]: prints the seconds from pg_ctl start to "recovery stopping".
replay() {
  local v=$1 trace=${2:-} rc rport log t0 stop_at deadline lsn state
  rm -rf "$R" "$W/pgbr-run/spool/archive"
  cp -a "$W/base" "$R" || { say "$v: cannot copy the base backup"; echo failed; return 0; }
  # Hard links, not copies: recovery paused at its target writes no segment, and 1 GiB less
  # to write each run.
  [ "$v" = local ] && for s in "${segs[@]}"; do ln "$W/wal/$s" "$R/pg_wal/"; done
  chown -R postgres: "$R"
  rc=$(restore_command "$v")
  if [ -n "$trace" ]; then
    rc="$W/trace.sh $trace ${rc/ get %f %p / get --json %f %p }"
  fi
  rport=$(bench_port)
  log=$W/replay-$v.log
  : > "$log"; chown postgres: "$log"
  cat >> "$R/postgresql.auto.conf" <<CONF
port = $rport
unix_socket_directories = '$W'
listen_addresses = ''
archive_mode = off
shared_buffers = $SHARED_BUFFERS
max_wal_size = 4GB
checkpoint_timeout = 1h
hot_standby = on
recovery_prefetch = try
maintenance_io_concurrency = 10
wal_decode_buffer_size = 512kB
log_line_prefix = '%m [%p] '
log_timezone = 'UTC'
restore_command = '${rc//\'/\'\'}'
recovery_target_lsn = '$TARGET'
recovery_target_action = pause
CONF
  pg touch "$R/recovery.signal"
  sync
  t0=$(now)
  pg "$PGBIN/pg_ctl" -D "$R" -l "$log" start >/dev/null || { say "$v: pg_ctl start failed"; echo failed; return 0; }
  deadline=$(( $(date +%s) + WAIT ))
  until grep -q 'recovery stopping after WAL location' "$log"; do
    if grep -qE 'FATAL|PANIC|database system is shut down' "$log" || [ "$(date +%s)" -ge "$deadline" ]; then
      say "$v: recovery did not reach $TARGET: $(grep -E 'FATAL|PANIC' "$log" | tail -1)"
      pg "$PGBIN/pg_ctl" -D "$R" -m immediate -w stop >/dev/null 2>&1 || true
      echo failed; return 0
    fi
    sleep 0.05
  done
  stop_at=$(grep -m1 'recovery stopping after WAL location' "$log" | cut -d' ' -f1-2)
  stop_at=$(date -u -d "$stop_at" +%s.%N)
  # The server paused there, with everything up to the target replayed.
  for _ in $(seq 1 600); do
    state=$(psqlq "$rport" "select pg_get_wal_replay_pause_state()" 2>/dev/null || true)
    [ "$state" = paused ] && break
    sleep 0.1
  done
  lsn=$(psqlq "$rport" "select pg_last_wal_replay_lsn() >= '$TARGET'::pg_lsn" 2>/dev/null || true)
  pg "$PGBIN/pg_ctl" -D "$R" -m immediate -w stop >/dev/null 2>&1 || true
  settle
  if [ "$state" != paused ] || [ "$lsn" != t ]; then
    say "$v: not paused at $TARGET (state $state, replayed past it: $lsn)"
    echo failed; return 0
  fi
  echo "$stop_at - $t0" | bc -l
}

median() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "failed"; else print v[int((NR + 1) / 2)] }'; }
variants=(local prefetch pgbackrest get prefetch-setsid)
declare -A times
for r in $(seq 1 "$ROUNDS"); do
  order=("${variants[@]}")
  if [ $((r % 2)) = 0 ]; then
    for i in "${!variants[@]}"; do order[i]=${variants[${#variants[@]} - 1 - i]}; done
  fi
  for v in "${order[@]}"; do
    t=$(replay "$v")
    say "round $r: $v $(bench_fmt "$t") s"
    times[$v]="${times[$v]:-} $t"
  done
done
declare -A med
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  med[$v]=$(median ${times[$v]:-})
done

# The traced runs: where replay waited.
summary=()
if [ "$TRACE" = 1 ]; then
  for v in "${variants[@]}"; do
    : > "$W/trace-$v"; chown postgres: "$W/trace-$v"
    t=$(replay "$v" "$W/trace-$v")
    # Every call is time replay waited (the startup process runs restore_command and waits);
    # "between gets" is the time replay went on between two calls.
    pmed=$(awk '$3 == 0 { print $2 - $1 }' "$W/trace-$v" | sort -g | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }')
    s=$(awk -v total="$t" -v med="$pmed" '
      { d = $2 - $1; wait += d; if (prev) gap += $1 - prev; prev = $2 }
      $3 == 0 { n++; if (d > max) max = d; if ($4 == "spool") sp++; if ($4 != "-") tagged++ }
      END {
        if (n == 0) { printf "%d calls (none restored a file), waited %.2f s of %.2f s; replay between calls %.2f s\n", NR, wait, total, gap; exit }
        printf "%d files got%s, %d calls in all, waited %.2f s of %.2f s; per get median %.0f ms, max %.0f ms; replay between calls %.2f s\n",
          n, tagged ? sprintf(" (%d from the spool)", sp) : "", NR, wait, total, 1000 * med, 1000 * max, gap }' "$W/trace-$v")
    summary+=("traced $v: $s")
  done
  [ -z "${TRACE_DIR:-}" ] || { mkdir -p "$TRACE_DIR"; cp "$W"/trace-* "$W"/replay-*.log "$TRACE_DIR/"; }
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "replay of $N archived segments ($((N * 16)) MiB, pgbench scale $SCALE) from a cold base backup to a paused recovery target; median seconds of $ROUNDS rounds"
echo "shared_buffers $SHARED_BUFFERS; wal-archive --prefetch $PREFETCH; pgBackRest zst-1, archive-async=y, archive-get process-max=2, archive-get-queue-max default"
echo "load average (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after, on $(nproc) cores; sched_autogroup_enabled $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -)"
printf '%-52s %8s   %s\n' variant seconds "each round"
for v in "${variants[@]}"; do
  printf '%-52s %8s   %s\n' "$v: $(restore_command "$v" | sed "s|$BIN/||; s| --repo [^ ]*||; s| --config=[^ ]*||; s| --pg1-path=[^ ]*||")" "$(bench_fmt "${med[$v]}")" "${times[$v]:-}"
done
for l in "${summary[@]}"; do echo "$l"; done

m="replay $N segments (1 GiB) via restore_command"
rowr() { # MEASUREMENT PGDR PEER-NAME PEER GOAL LIMIT
  local ratio; ratio=$(bench_ratio "$2" "$4")
  bench_row wal-replay "$1" "$(bench_fmt "$2") s" "$3" "$(bench_fmt "$4") s" "$ratio" "$5" \
    "$([ -n "$6" ] && bench_le "${ratio%x}" "$6" || echo -)"
}
rowr "$m: get --prefetch $PREFETCH vs local pg_wal" "${med[prefetch]}" "local pg_wal (floor)" "${med[local]}" "<= 1.1x" 1.1
rowr "$m: get --prefetch $PREFETCH vs pgBackRest async" "${med[prefetch]}" "pgBackRest async" "${med[pgbackrest]}" "<= 0.5x" 0.5
rowr "$m: get (no prefetch) vs local pg_wal" "${med[get]}" "local pg_wal (floor)" "${med[local]}" "-" ""
rowr "$m: get --prefetch $PREFETCH under setsid -w vs local pg_wal" "${med[prefetch-setsid]}" "local pg_wal (floor)" "${med[local]}" "-" ""
rowr "$m: get --prefetch $PREFETCH under setsid -w vs pgBackRest async" "${med[prefetch-setsid]}" "pgBackRest async" "${med[pgbackrest]}" "-" ""
rowr "$m: pgBackRest async vs local pg_wal (peer's ratio)" "${med[pgbackrest]}" "local pg_wal (floor)" "${med[local]}" "-" ""
for l in "${summary[@]}"; do bench_row wal-replay "${l:0:200}" - - - - - -; done
bench_row wal-replay "machine load average (1, 5, 15 min)" "$LOAD_BEFORE before" - "$LOAD_AFTER after" - "$(nproc) cores" -
