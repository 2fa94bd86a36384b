#!/usr/bin/env bash
# snap-clone speed: time from command to a paused, queryable server at a target time T.
# One run per filesystem (btrfs, zfs-fuse) and pgbench scale (SCALES, default "16 64"): a
# primary archiving through wal-archive AND pgBackRest, a snapshot and a pgBackRest full
# backup (zst level 1) at the same moment, then TX pgbench transactions (default 150000),
# then T. Measured: snap-clone --before T (point in time), snap-clone of the snapshot's own
# moment, pgbackrest restore --type=time --target-action=pause + start, and PostgreSQL
# replaying the same WAL from a local pg_wal (the floor).
# Needs root, pgbackrest (apt-get install -y pgbackrest), a release build.
# Knobs: SCALES ("16 64"), TX (150000), FSS ("btrfs zfs"), WAIT (600 s per server), KEEP=1
# (leave everything in place for a look; clean up by hand).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=$PWD/target/release
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SCALES=${SCALES:-"16 64"}
TX=${TX:-150000}
FSS=${FSS:-"btrfs zfs"}
WAIT=${WAIT:-600}
[ "$(id -u)" = 0 ] || { echo "bench-snap-clone: needs root; skipped"; exit 0; }
command -v pgbackrest >/dev/null || { echo "bench-snap-clone: pgbackrest not installed; skipped"; exit 0; }
WORK=$(mktemp -d /tmp/pgdr-bsc.XXXXXX)
chmod 755 "$WORK"; chown postgres "$WORK"
POOL=pgdrbsc$$
export PGDR_CLONE_DIR=$WORK/clones
cleanup() {
  set +e
  for c in $("$BIN/snap-clone" --list 2>/dev/null | grep -o '"clone":"[^"]*"' | cut -d'"' -f4); do
    "$BIN/snap-clone" --destroy "$c" >/dev/null 2>&1
  done
  for d in "$WORK"/btrfs/*/data "$WORK"/btrfs/*/restore /"$POOL"/*/data /"$POOL"/*/restore; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  if zpool list "$POOL" >/dev/null 2>&1; then
    for _ in 1 2 3 4 5; do zpool destroy -f "$POOL" >/dev/null 2>&1 && break; sleep 2; done
  fi
  if mountpoint -q "$WORK/btrfs"; then umount "$WORK/btrfs" || { sleep 2; umount "$WORK/btrfs"; }; fi
  rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
pg() { runuser -u postgres -- "$@"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
say() { echo "bench-snap-clone: $*" >&2; }
PORT=$(bench_port)
RPORT=$(bench_port)
psqlq() { bench_psql "$1" "${3:-$WORK}" "$2"; }
# The end of a failed server's log, on stderr, for the record.
log_tail() { say "$1 failed; end of $2:"; tail -n 8 "$2" 2>/dev/null | sed 's/^/    /' >&2 || true; }
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
json_num() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

rows=()
run_one() { # fs scale pgdata-parent
  local fs=$1 scale=$2 base=$3 d=$3/data
  say "$fs, scale $scale: pgbench -i, a snapshot and a pgBackRest full backup, then $TX transactions"
  local conf=$WORK/pgbackrest-$fs-$scale.conf
  # pgBackRest's lock and spool paths apart from its repository: restore empties the spool's
  # archive/<stanza> directory, which was the WAL archive itself when spool-path was repo1-path
  # (archive-get then failed with "unable to find a valid repository").
  mkdir -p "$WORK/pgbr-$fs-$scale" "$WORK/pgbr-run-$fs-$scale"
  chown postgres: "$WORK/pgbr-$fs-$scale" "$WORK/pgbr-run-$fs-$scale"
  bench_pgbr_conf "$conf" "$d" "$PORT" "$WORK" "$WORK/pgbr-run-$fs-$scale/lock" "$WORK/pgbr-run-$fs-$scale/spool" <<CONF
repo1-path=$WORK/pgbr-$fs-$scale
repo1-retention-full=1
start-fast=y
CONF
  local repo=$WORK/wal-$fs-$scale
  bench_archiving_primary "$d" "$PORT" "$WORK" "$WORK/log-$fs-$scale" "$repo" "$conf" "$scale" <<CONF
max_wal_size = 4GB
archive_mode = on
archive_command = '$BIN/wal-archive push %p --repo $repo && pgbackrest --config=$conf --stanza=b archive-push %p'
CONF
  psqlq "$PORT" checkpoint >/dev/null
  local snap
  snap=$("$BIN/snap-take" --pgdata "$d" | json_field snapshot)
  pg pgbackrest --config="$conf" --stanza=b --type=full backup >/dev/null
  # synchronous_commit=off only makes the WAL faster to produce on slow fsync (zfs-fuse); the
  # records are the same.
  local a; a=$(now)
  PGOPTIONS="-c synchronous_commit=off" pg "$PGBIN/pgbench" -n -c 4 -j 2 -t $((TX / 4)) -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null 2>&1
  say "$fs, scale $scale: $TX transactions took $(bench_fmt "$(secs "$a" "$(now)")" 0) s"
  local T
  bench_target_time "$d" "$PORT" "$WORK"
  local size wal_mb
  size=$(du -sm "$d" | cut -f1)
  wal_mb=$(( $(find "$repo/wal" -type f -name '????????????????????????' | wc -l) * 16 ))

  # snap-clone at T, and of the snapshot's own moment: command to paused and queryable.
  local t_pitr=failed t_snap=failed out
  a=$(now)
  if out=$("$BIN/snap-clone" --pgdata "$d" --before "$T" --name pitr --repo "$repo" --start --wait "$WAIT" 2>&1); then
    t_pitr=$(secs "$a" "$(now)")
    # Only what was committed before T is there.
    if [ "$(psqlq "$(echo "$out" | json_num port)" "select to_regclass('after_t') is null" "$(echo "$out" | json_field socket_dir)")" != t ]; then
      say "the clone at T has a table created after T"; t_pitr=failed
    fi
    "$BIN/snap-clone" --destroy pitr >/dev/null
  else
    say "snap-clone --before T failed: $(echo "$out" | tail -n 5)"
  fi
  a=$(now)
  if out=$("$BIN/snap-clone" --pgdata "$d" --snapshot "$snap" --name moment --start --wait "$WAIT" 2>&1); then
    t_snap=$(secs "$a" "$(now)")
    "$BIN/snap-clone" --destroy moment >/dev/null
  else
    say "snap-clone --snapshot failed: $(echo "$out" | tail -n 5)"
  fi

  # pgBackRest: restore into a new directory on the same filesystem, its own port, start,
  # wait until paused at T. restore_command reaches the same repository through the same
  # config file.
  local r=$base/restore t_br=failed
  a=$(now)
  mkdir -p "$r"; chown postgres: "$r"; chmod 700 "$r"
  local rc=0
  bench_pgbr_pitr "$conf" "$r" "$T" "$RPORT" "$WORK" "$WORK/log-r-$fs-$scale" "$WAIT" || rc=$?
  case $rc in
    0) t_br=$(secs "$a" "$(now)") ;;
    1) say "pgbackrest restore failed" ;;
    *) log_tail "pgbackrest restore" "$WORK/log-r-$fs-$scale" ;;
  esac
  pg "$PGBIN/pg_ctl" -D "$r" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$r"

  # The floor: PostgreSQL replaying the same WAL from a local pg_wal, no restore_command, timed
  # from server start to paused at T. A snapshot is a crash image, and crash recovery replays
  # everything in pg_wal before it is consistent (a target inside that WAL is then "before
  # consistent recovery point"), so the clone is first brought to its consistent moment (not
  # timed) and shut down in recovery; the second start is archive recovery from pg_wal only.
  local t_floor=failed f fport fsock w
  if out=$("$BIN/snap-clone" --pgdata "$d" --snapshot "$snap" --name floor --recovery-target immediate \
      --repo "$repo" --start --wait "$WAIT" 2>&1); then
    f=$(echo "$out" | json_field path)
    fport=$(echo "$out" | json_num port)
    fsock=$(echo "$out" | json_field socket_dir)
    pg "$PGBIN/pg_ctl" -D "$f" -m fast -w stop >/dev/null
    for w in $(find "$repo/wal" -type f -printf '%f\n' | grep -E '^[0-9A-F]{24}$' | sort); do
      rm -f "$f/pg_wal/$w"
      pg "$BIN/wal-archive" get "$w" "$f/pg_wal/$w" --repo "$repo" >/dev/null
    done
    printf "recovery_target = ''\nrecovery_target_time = '%s'\nrestore_command = 'false'\n" "$T" | pg tee -a "$f/postgresql.auto.conf" >/dev/null
    sync
    a=$(now)
    if pg "$PGBIN/pg_ctl" -D "$f" -l "$fsock/server.log" -w -t "$WAIT" start >/dev/null 2>&1 && bench_wait_paused "$fport" "$fsock" "$f" "$WAIT"; then
      t_floor=$(secs "$a" "$(now)")
      [ "$(psqlq "$fport" "select to_regclass('after_t') is null" "$fsock")" = t ] || { say "the floor went past T"; t_floor=failed; }
    else
      log_tail "replay floor" "$fsock/server.log"
    fi
    "$BIN/snap-clone" --destroy floor >/dev/null
  else
    say "snap-clone for the floor failed: $(echo "$out" | tail -n 3)"
  fi

  rows+=("$fs|scale $scale ($size MB): clone at T vs pgbackrest restore|$t_pitr|$t_br|$(bench_ratio "$t_pitr" "$t_br")")
  rows+=("$fs|scale $scale: clone at T vs replay floor|$t_pitr|$t_floor|$(bench_ratio "$t_pitr" "$t_floor")")
  rows+=("$fs|scale $scale: clone of the snapshot's moment|$t_snap|-|-")
  local fsname=$fs goal="report (goal at scale 64)" met=- ratio
  [ "$fs" = zfs ] && fsname=zfs-fuse
  ratio=$(bench_ratio "$t_pitr" "$t_br")
  if [ "$scale" = 64 ]; then goal="<= 0.5x"; met=$(bench_le "${ratio%x}" 0.5); fi
  bench_row snap-clone "$fsname, scale $scale ($size MB), $TX tx ($wal_mb MB WAL): clone at T" "$(bench_fmt "$t_pitr") s" \
    "pgbackrest restore --type=time" "$(bench_fmt "$t_br") s" "$ratio" "$goal" "$met"
  ratio=$(bench_ratio "$t_pitr" "$t_floor")
  bench_row snap-clone "$fsname, scale $scale: clone at T" "$(bench_fmt "$t_pitr") s" \
    "replay floor (local pg_wal)" "$(bench_fmt "$t_floor") s" "$ratio" "<= 1.2x" "$(bench_le "${ratio%x}" 1.2)"
  bench_row snap-clone "$fsname, scale $scale: clone of the snapshot's moment" "$(bench_fmt "$t_snap") s" - - - "<= 2 s" "$(bench_le "$t_snap" 2)"
}

# One filesystem per (filesystem, scale), removed before the next, so that the disk holds one
# run's data, WAL, restore and clones at a time (scale 64 with 150,000 transactions: ~6 GB).
# The 12 GiB images are sparse.
for fs in $FSS; do
  for s in $SCALES; do
    case $fs in
      btrfs)
        truncate -s 12G "$WORK/btrfs.img"; mkfs.btrfs -q -f "$WORK/btrfs.img" >/dev/null 2>&1
        mkdir -p "$WORK/btrfs"; mount -o loop "$WORK/btrfs.img" "$WORK/btrfs"
        btrfs subvolume create "$WORK/btrfs/s$s" >/dev/null
        run_one btrfs "$s" "$WORK/btrfs/s$s"
        umount "$WORK/btrfs" || { sleep 2; umount "$WORK/btrfs"; }
        rm -f "$WORK/btrfs.img" ;;
      zfs)
        truncate -s 12G "$WORK/pool.img"
        if bench_zfs_daemon && zpool create -f -m "/$POOL" "$POOL" "$WORK/pool.img" >/dev/null 2>&1; then
          zfs create "$POOL/s$s"
          run_one zfs "$s" "/$POOL/s$s"
          for _ in 1 2 3 4 5; do zpool destroy -f "$POOL" >/dev/null 2>&1 && break; sleep 2; done
        else
          rows+=("zfs|unavailable (zpool create failed)|-|-|-")
          bench_row snap-clone "zfs-fuse, scale $s: unavailable (zpool create failed)" - - - - - -
        fi
        rm -f "$WORK/pool.img" ;;
      *) echo "bench-snap-clone: unknown filesystem $fs (FSS: btrfs zfs)" >&2; exit 2 ;;
    esac
  done
done

echo
printf "%-6s %-50s %10s %10s %8s\n" fs measurement pgdr peer ratio
for r in "${rows[@]}"; do
  IFS='|' read -r b m p q x <<<"$r"
  printf "%-6s %-50s %10s %10s %8s\n" "$b" "$m" "$(bench_fmt "$p")" "$(bench_fmt "$q")" "$x"
done
echo "(seconds from command to a paused, queryable server at T; $TX pgbench transactions after the snapshot; peer: pgBackRest $(pgbackrest version | cut -d' ' -f2) restore --type=time --target-action=pause + start, or PostgreSQL replaying the same WAL from a local pg_wal)"
