#!/usr/bin/env bash
# snap-take speed: seconds per snapshot on zfs (zfs-fuse or OpenZFS) and btrfs for a small and
# a ~1 GiB PGDATA (goal: under 1 s, flat as the database grows), and the copy backend's MB/s
# against `cp -a` of the same directory (ext4 here, and btrfs where reflinks apply).
# Needs root (pools and loop mounts), a release build (make bench builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=$PWD/target/release
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ "$(id -u)" = 0 ] || { echo "bench-snap: needs root (zfs pool, btrfs loop mount); skipped"; exit 0; }
WORK=$(mktemp -d /tmp/pgdr-bench-snap.XXXXXX)
chmod 755 "$WORK"
POOL=pgdrbench$$
cleanup() {
  set +e
  for d in "$WORK"/*/data; do [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1; done
  zpool destroy -f "$POOL" >/dev/null 2>&1 || { sleep 1; zpool destroy -f "$POOL" >/dev/null 2>&1; }
  umount "$WORK/btrfs" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
pg() { runuser -u postgres -- "$@"; }

# A cluster with pgbench data at a scale, stopped (a snapshot's cost does not depend on it).
make_cluster() { # dir scale
  mkdir -p "$1"; chown postgres "$1"; chmod 700 "$1"
  pg "$PGBIN/initdb" -D "$1" -A trust -U postgres >/dev/null
  printf "port = 5499\nunix_socket_directories = '%s'\nlisten_addresses = ''\nfsync = off\nmax_wal_size = 1GB\n" "$WORK" >> "$1/postgresql.conf"
  pg "$PGBIN/pg_ctl" -D "$1" -l "$WORK/log" -w start >/dev/null
  pg "$PGBIN/pgbench" -i -q -s "$2" -h "$WORK" -p 5499 -U postgres postgres >/dev/null 2>&1
  pg "$PGBIN/psql" -qAt -h "$WORK" -p 5499 -U postgres -c checkpoint postgres >/dev/null
  pg "$PGBIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null
}
mb() { du -sm "$1" | cut -f1; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
# Median seconds of 3 snap-take runs.
time_take() { # pgdata extra...
  local d=$1; shift; local t=()
  for i in 1 2 3; do
    local a; a=$(now); "$BIN/snap-take" --pgdata "$d" --label "b$i" "$@" >/dev/null; t+=("$(secs "$a" "$(now)")")
    sleep 1
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 2p
}

echo "building data directories (pgbench scale 8 and 64)..." >&2
mkdir -p "$WORK/src"; chmod 755 "$WORK/src"; chown postgres "$WORK"
make_cluster "$WORK/src/small" 8
make_cluster "$WORK/src/big" 64
SMALL_MB=$(mb "$WORK/src/small"); BIG_MB=$(mb "$WORK/src/big")

rows=()
# zfs
truncate -s 6G "$WORK/pool.img"
if bench_zfs_daemon && zpool create -f -m "/$POOL" "$POOL" "$WORK/pool.img" >/dev/null 2>&1; then
  for s in small big; do
    zfs create "$POOL/$s"; cp -a "$WORK/src/$s" "/$POOL/$s/data"
    t=$(time_take "/$POOL/$s/data"); eval "t_$s=\$t"
    rows+=("zfs|snap-take $s ($(mb /$POOL/$s/data) MB)|$t|-|-")
    bench_row snap-take "zfs-fuse, $(mb /$POOL/$s/data) MB PGDATA (median of 3)" "$(bench_fmt "$t" 3) s" - - - "< 1 s" "$(bench_le "$t" 0.999)"
  done
  bench_row snap-take "zfs-fuse, growth: big / small" "$(bench_ratio "$t_big" "$t_small")" - - - "flat (about 1x)" -
else
  rows+=("zfs|unavailable (zpool create failed)|-|-|-")
fi
# btrfs
truncate -s 6G "$WORK/btrfs.img"; mkfs.btrfs -q "$WORK/btrfs.img" >/dev/null 2>&1; mkdir -p "$WORK/btrfs"; mount -o loop "$WORK/btrfs.img" "$WORK/btrfs"
for s in small big; do
  btrfs subvolume create "$WORK/btrfs/$s" >/dev/null; cp -a "$WORK/src/$s" "$WORK/btrfs/$s/data"
  t=$(time_take "$WORK/btrfs/$s/data"); eval "t_$s=\$t"
  rows+=("btrfs|snap-take $s ($(mb $WORK/btrfs/$s/data) MB)|$t|-|-")
  bench_row snap-take "btrfs, $(mb $WORK/btrfs/$s/data) MB PGDATA (median of 3)" "$(bench_fmt "$t" 3) s" - - - "< 1 s" "$(bench_le "$t" 0.999)"
done
bench_row snap-take "btrfs, growth: big / small" "$(bench_ratio "$t_big" "$t_small")" - - - "flat (about 1x)" -
# copy backend vs cp -a, same directory, page cache warm for both.
copy_vs_cp() { # fs-name pgdata
  local d=$1 name=$2 a t_cp t_take
  cat $(find "$d" -type f) >/dev/null
  a=$(now); cp -a "$d" "$d.cp"; sync -f "$d.cp"; t_cp=$(secs "$a" "$(now)"); rm -rf "$d.cp"
  a=$(now); "$BIN/snap-take" --pgdata "$d" --backend copy --label copy >/dev/null; t_take=$(secs "$a" "$(now)")
  local size; size=$(mb "$d")
  rows+=("copy ($name)|snap-take --backend copy vs cp -a ($size MB)|$t_take|$t_cp|$(echo "$t_take / $t_cp" | bc -l)")
  rows+=("copy ($name)|MB/s: snap-take vs cp -a|$(echo "$size / $t_take" | bc -l)|$(echo "$size / $t_cp" | bc -l)|$(echo "$t_cp / $t_take" | bc -l)")
  bench_row snap-take "--backend copy on $name, $size MB" \
    "$(bench_fmt "$t_take") s = $(bench_fmt "$(echo "$size / $t_take" | bc -l)" 0) MB/s" "cp -a + sync" \
    "$(bench_fmt "$t_cp") s = $(bench_fmt "$(echo "$size / $t_cp" | bc -l)" 0) MB/s" "$(bench_ratio "$t_take" "$t_cp")" "report MB/s vs cp -a" -
}
copy_vs_cp "$WORK/src/big" "ext4"
copy_vs_cp "$WORK/btrfs/big/data" "btrfs, reflinks"

echo
printf "%-18s %-45s %12s %12s %8s\n" backend measurement pgdr peer ratio
for r in "${rows[@]}"; do
  IFS='|' read -r b m p q x <<<"$r"
  fmt() { [[ $1 =~ ^[0-9.]+$ ]] && printf "%.3f" "$1" || printf "%s" "$1"; }
  printf "%-18s %-45s %12s %12s %8s\n" "$b" "$m" "$(fmt "$p")" "$(fmt "$q")" "$(fmt "$x")"
done
echo "(seconds unless MB/s; snap-take rows: median of 3; peer for copy rows: cp -a of the same directory; small = scale 8 = ${SMALL_MB} MB, big = scale 64 = ${BIG_MB} MB)"
