#!/usr/bin/env bash
# Snapshot images (issue 15) against pgBackRest, side by side in one run, both to the same
# local S3 server (moto_server over TLS, tests/bench/lib.sh bench_s3_start; REPO_KIND=local:
# both to local repositories on the same disk instead): a primary on a btrfs loop mount at
# pgbench scale SCALE (default 64), archiving through wal-archive AND pgBackRest; then
#   1. the first image of a snapshot (snap-take - --to) vs pgbackrest backup --type=full;
#   2. after TX transactions (default 10000), the second image vs --type=incr;
#   3. the second image restored into a new directory (snap-clone --repo --target, no start)
#      vs pgbackrest restore into a new directory;
#   4. a clone at T from the repository, started and paused (snap-clone --repo --before T
#      --start) vs pgbackrest restore --type=time + start until paused.
# Both sides: zstd level 1, PARALLEL workers (default 4; pgBackRest process-max). Peak memory
# (maximum resident set size, /usr/bin/time) of the upload and of the restore is reported;
# goal <= 256 MiB. Goal for the times: <= 0.5x pgBackRest.
# Needs root, pgbackrest, btrfs-progs, a release build (PGDR_BIN, default target/release).
# Every figure is the median of REPEAT runs (default 3), the two tools taking turns.
# Knobs: SCALE (64), TX (10000), PARALLEL (4), REPEAT (3), WAIT (600 s), REPO_KIND (s3 or
# local), KEEP=1 (leave it all in place).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${PGDR_BIN:-$PWD/target/release}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SCALE=${SCALE:-64}
TX=${TX:-10000}
PARALLEL=${PARALLEL:-4}
REPEAT=${REPEAT:-3}
WAIT=${WAIT:-600}
REPO_KIND=${REPO_KIND:-s3}
[ "$(id -u)" = 0 ] || { echo "bench-snap-images: needs root; skipped"; exit 0; }
command -v pgbackrest >/dev/null || { echo "bench-snap-images: pgbackrest not installed; skipped"; exit 0; }
command -v mkfs.btrfs >/dev/null || { echo "bench-snap-images: btrfs-progs not installed; skipped"; exit 0; }
if [ "$REPO_KIND" = s3 ]; then
  for c in moto_server socat aws; do
    command -v $c >/dev/null || { echo "bench-snap-images: $c missing (make deps WITH_BENCH=1)"; exit 1; }
  done
fi
WORK=$(mktemp -d /tmp/pgdr-bsi.XXXXXX)
chmod 755 "$WORK"; chown postgres "$WORK"
export PGDR_CLONE_DIR=$WORK/clones
MNT=$WORK/btrfs
cleanup() {
  set +e
  for c in $("$BIN/snap-clone" --list 2>/dev/null | grep -o '"clone":"[^"]*"' | cut -d'"' -f4); do
    "$BIN/snap-clone" --destroy "$c" >/dev/null 2>&1
  done
  for d in "$MNT/pg/data" "$WORK/br-restore" "$WORK/br-pitr"; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  if mountpoint -q "$MNT"; then umount "$MNT" || { sleep 2; umount "$MNT"; }; fi
  bench_s3_stop
  rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
pg() { runuser -u postgres -- "$@"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
say() { echo "bench-snap-images: $*" >&2; }
PORT=$(bench_port)
RPORT=$(bench_port)
psqlq() { bench_psql "$1" "${3:-$WORK}" "$2"; }
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
json_num() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
# run_timed OUT RSS CMD...: CMD's stdout to OUT, its maximum resident set size (KiB) to RSS;
# prints the seconds it took.
run_timed() {
  local out=$1 rss=$2 a; shift 2
  a=$(now)
  /usr/bin/time -f '%M' -o "$rss" "$@" > "$out" || return 1
  secs "$a" "$(now)"
}
mib() { awk -v k="$(cat "$1" 2>/dev/null)" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.0f\n", k / 1024; else print "-" }'; }

say "btrfs, scale $SCALE: pgbench -i, archiving to wal-archive and pgBackRest"
truncate -s 8G "$WORK/btrfs.img"
mkfs.btrfs -q "$WORK/btrfs.img" >/dev/null 2>&1
mkdir -p "$MNT"; mount -o loop "$WORK/btrfs.img" "$MNT"
btrfs -q subvolume create "$MNT/pg"
chown postgres: "$MNT/pg"
d=$MNT/pg/data
conf=$WORK/pgbackrest.conf
mkdir -p "$WORK/pgbr" "$WORK/pgbr-run"; chown postgres: "$WORK/pgbr" "$WORK/pgbr-run"
if [ "$REPO_KIND" = s3 ]; then
  bench_s3_start "$WORK"
  repo=s3://bench/pgdr
  brrepo="$(bench_s3_conf)
repo1-path=/pgbr"
  where="the same local S3 server (moto_server over TLS)"
else
  repo=$WORK/repo
  brrepo="repo1-path=$WORK/pgbr"
  where="local repositories on one disk"
fi
bench_pgbr_conf "$conf" "$d" "$PORT" "$WORK" "$WORK/pgbr-run/lock" "$WORK/pgbr-run/spool" <<CONF
$brrepo
repo1-retention-full=$((REPEAT + 1))
process-max=$PARALLEL
start-fast=y
CONF
bench_archiving_primary "$d" "$PORT" "$WORK" "$WORK/log" "$repo" "$conf" "$SCALE" <<CONF
max_wal_size = 4GB
archive_mode = on
archive_command = '$BIN/wal-archive push %p --repo $repo && pgbackrest --config=$conf --stanza=b archive-push %p'
CONF
psqlq "$PORT" checkpoint >/dev/null
size=$(du -sm "$d" | cut -f1)

# Each measurement is taken REPEAT times, the two tools taking turns, and the median kept:
# on a shared machine single runs differ by 2x. Repeated images go to fresh repositories
# (repo.N, each initialised for the cluster); repeated pgBackRest backups go to its one
# repository.
median() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "failed"; else print v[int((NR + 1) / 2)] }'; }
for i in $(seq 2 "$REPEAT"); do "$BIN/wal-archive" init --repo "$repo.$i" --pgdata "$d" >/dev/null; done
repo_n() { if [ "$1" = 1 ]; then echo "$repo"; else echo "$repo.$1"; fi; }

# 1. First image vs full backup. The snapshot (btrfs, instant) is taken first and not timed:
# the image is what is compared.
snap1=$("$BIN/snap-take" --pgdata "$d")
full=(); img=()
for i in $(seq 1 "$REPEAT"); do
  full+=("$(run_timed /dev/null "$WORK/rss-full" runuser -u postgres -- pgbackrest --config="$conf" --stanza=b --type=full backup || echo failed)")
  img+=("$(echo "$snap1" | run_timed "$WORK/img1.json" "$WORK/rss-img1" "$BIN/snap-take" - --to "$(repo_n "$i")" --parallel "$PARALLEL" || echo failed)")
done
t_full=$(median "${full[@]}"); t_img1=$(median "${img[@]}")
img1=$(cat "$WORK/img1.json")
say "first image: $(echo "$img1" | json_num objects) pieces, $(( $(echo "$img1" | json_num stored_bytes) / 1048576 )) MiB stored, ${img[*]} s; pgBackRest full: ${full[*]} s"

# 2. TX transactions, then the second image vs an incremental backup (the repeats: --type=diff,
# which after the newest full copies exactly what incr copies).
PGOPTIONS="-c synchronous_commit=off" pg "$PGBIN/pgbench" -n -c 4 -j 2 -t $((TX / 4)) -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null 2>&1
psqlq "$PORT" checkpoint >/dev/null
snap2=$("$BIN/snap-take" --pgdata "$d")
incr=(); img=()
for i in $(seq 1 "$REPEAT"); do
  type=diff; [ "$i" = 1 ] && type=incr
  incr+=("$(run_timed /dev/null "$WORK/rss-incr" runuser -u postgres -- pgbackrest --config="$conf" --stanza=b --type=$type backup || echo failed)")
  img+=("$(echo "$snap2" | run_timed "$WORK/img2.$i.json" "$WORK/rss-img2" "$BIN/snap-take" - --to "$(repo_n "$i")" --parallel "$PARALLEL" || echo failed)")
done
t_incr=$(median "${incr[@]}"); t_img2=$(median "${img[@]}")
img2=$(cat "$WORK/img2.1.json")
name2=$(echo "$img2" | json_field image)
sent2=$(echo "$img2" | json_num objects_sent)
unread2=$(echo "$img2" | json_num files_unchanged)
say "second image: $sent2 of $(echo "$img2" | json_num objects) pieces sent ($(( $(echo "$img2" | json_num stored_bytes_sent) / 1048576 )) MiB stored), $unread2 of $(echo "$img2" | json_num files) files not read (unchanged stamps), ${img[*]} s; pgBackRest incr/diff: ${incr[*]} s"
# A moment after the second image, for the point-in-time rows; then its WAL archived.
PGOPTIONS="-c synchronous_commit=off" pg "$PGBIN/pgbench" -n -c 4 -j 2 -t $((TX / 4)) -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null 2>&1
bench_target_time "$d" "$PORT" "$WORK"

# The floors, with the tools removed: reading every file of the (stopped) data directory with
# PARALLEL readers, what any image of it must at least do; and cp -a of it into a new
# directory on the restore's disk then sync, what any restore must at least do.
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
a=$(now)
(cd "$d" && find . -type f -print0 | xargs -0 -P "$PARALLEL" -n 64 cat > /dev/null)
t_readfloor=$(secs "$a" "$(now)")
a=$(now)
cp -a "$d" "$WORK/floor" && sync
t_cpfloor=$(secs "$a" "$(now)")
rm -rf "$WORK/floor"
say "floors: reading the data directory ${t_readfloor} s, cp -a + sync ${t_cpfloor} s"

# 3. Restore into a new directory (on the repositories' disk), nothing started.
rest=(); brrest=()
br=$WORK/br-restore
for i in $(seq 1 "$REPEAT"); do
  rest+=("$(run_timed "$WORK/rest.json" "$WORK/rss-rest" "$BIN/snap-clone" --repo "$repo" --snapshot "$name2" \
    --target "$WORK/restore" --name restore --parallel "$PARALLEL" || echo failed)")
  "$BIN/snap-clone" --destroy restore >/dev/null 2>&1 || true
  mkdir -p "$br"; chown postgres: "$br"; chmod 700 "$br"
  brrest+=("$(run_timed /dev/null "$WORK/rss-brrest" runuser -u postgres -- pgbackrest --config="$conf" --stanza=b --pg1-path="$br" restore || echo failed)")
  rm -rf "$br"
done
t_rest=$(median "${rest[@]}"); t_brrest=$(median "${brrest[@]}")
say "restore: ${rest[*]} s; pgBackRest: ${brrest[*]} s"

# 4. A clone at T from the repository, started and paused, vs restore --type=time + start.
pitr=(); brpitr=()
bp=$WORK/br-pitr
for i in $(seq 1 "$REPEAT"); do
  t=failed
  if t=$(run_timed "$WORK/pitr.json" "$WORK/rss-pitr" "$BIN/snap-clone" --repo "$repo" --before "$T" \
      --target "$WORK/pitr" --name pitr --parallel "$PARALLEL" --start --wait "$WAIT"); then
    j=$(cat "$WORK/pitr.json")
    if [ "$(psqlq "$(echo "$j" | json_num port)" "select to_regclass('after_t') is null" "$(echo "$j" | json_field socket_dir)")" != t ]; then
      say "the clone at T has a table created after T"; t=failed
    fi
  else
    t=failed
  fi
  pitr+=("$t")
  "$BIN/snap-clone" --destroy pitr >/dev/null 2>&1 || true
  t=failed
  mkdir -p "$bp"; chown postgres: "$bp"; chmod 700 "$bp"
  a=$(now)
  rc=0
  bench_pgbr_pitr "$conf" "$bp" "$T" "$RPORT" "$WORK" "$WORK/log-br" "$WAIT" || rc=$?
  case $rc in
    0) t=$(secs "$a" "$(now)") ;;
    2) say "pgbackrest restore --type=time did not pause: $(tail -n 3 "$WORK/log-br" 2>/dev/null)" ;;
  esac
  brpitr+=("$t")
  pg "$PGBIN/pg_ctl" -D "$bp" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$bp"
done
t_pitr=$(median "${pitr[@]}"); t_brpitr=$(median "${brpitr[@]}")
say "clone at T: ${pitr[*]} s; pgBackRest: ${brpitr[*]} s"

up=$(mib "$WORK/rss-img1"); up2=$(mib "$WORK/rss-img2"); rest=$(mib "$WORK/rss-rest")
peak=$(printf '%s\n' "$up" "$up2" "$rest" | sort -n | tail -1)
echo
echo "snapshot images, btrfs source, $where, scale $SCALE ($size MB), --parallel $PARALLEL, median seconds of $REPEAT (pgBackRest: zst 1, process-max $PARALLEL)"
printf '%-46s %10s %10s %8s\n' measurement pgdr pgbackrest ratio
row() {
  printf '%-46s %10s %10s %8s\n' "$1" "$(bench_fmt "$2")" "$(bench_fmt "$3")" "$(bench_ratio "$2" "$3")"
  bench_row snap-images "$1" "$(bench_fmt "$2")" pgbackrest "$(bench_fmt "$3")" "$(bench_ratio "$2" "$3")" "<= 0.5x" "$(bench_le "$(bench_ratio "$2" "$3" | tr -d x)" 0.5)"
}
row "scale $SCALE: first image vs backup --type=full" "$t_img1" "$t_full"
row "second image after $TX tx ($sent2 pieces sent) vs --type=incr" "$t_img2" "$t_incr"
row "restore into a new directory vs restore" "$t_rest" "$t_brrest"
floor() {
  printf '%-46s %10s %10s %8s\n' "$1" "$(bench_fmt "$2")" "$(bench_fmt "$3")" "$(bench_ratio "$2" "$3")"
  bench_row snap-images "$1" "$(bench_fmt "$2")" "$4" "$(bench_fmt "$3")" "$(bench_ratio "$2" "$3")" "-" "-"
}
floor "floor of an image: reading every file" "$t_readfloor" "$t_incr" "pgbackrest incr"
floor "floor of a restore: cp -a + sync" "$t_cpfloor" "$t_brrest" "pgbackrest restore"
row "clone at T, started, paused vs restore --type=time + start" "$t_pitr" "$t_brpitr"
echo "peak memory (MiB): first image $up, second image $up2, restore $rest; pgBackRest full $(mib "$WORK/rss-full"), restore $(mib "$WORK/rss-brrest")"
bench_row snap-images "scale $SCALE: peak memory of image upload and restore (MiB)" "$peak" pgbackrest "$(mib "$WORK/rss-full")" "-" "<= 256 MiB" "$(bench_le "$peak" 256)"
