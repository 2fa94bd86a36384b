#!/usr/bin/env bash
# make demo: a whole disaster-recovery drill with pgdr, in a temporary directory.
#
# A primary prepared with hba-edit and conf-edit, archiving through wal-archive; a streaming
# standby from pg_basebackup; rows; snap-take; more rows; a moment T; more rows; repl-lag;
# snap-prune | wal-archive prune -; snap-clone --before T --recovery-target-time T --start;
# the clone's rows next to the primary's; snap-clone --destroy; then seed 001's step: the
# table damaged on the primary after T, restored beside it as it was at T (snap-clone --into
# --table, through a temporary clone), both shown; then the second region (an encrypted S3
# repository: wal-archive copy, snap-take - --to, the source's storage and local repository
# removed, and an instance at T from the S3 repository alone; tests/demo/second-region.sh);
# everything removed, also on Ctrl-C or
# failure. ZFS (zfs-fuse counts) when it works here, else the copy backend.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PGDR_BIN:-$ROOT/target/release}
PGBIN=${PGDR_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/initdb" ] || { echo "demo: no PostgreSQL server binaries (run make deps)" >&2; exit 1; }
for t in hba-edit conf-edit wal-archive snap-take snap-prune snap-clone repl-lag; do
  [ -x "$BIN/$t" ] || { echo "demo: $BIN/$t is missing (run make release)" >&2; exit 1; }
done
export PATH="$BIN:$PATH"

step=0
say() { step=$((step + 1)); printf 'demo %2d: %s\n' "$step" "$*" >&2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
json() { # json FIELD.PATH < document
  python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v[int(k)] if isinstance(v,list) else v[k]
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d /tmp/pgdr-demo.XXXXXX)
chmod 0755 "$WORK"
if [ "$(id -u)" = 0 ]; then chown postgres: "$WORK"; fi
POOL=""
SOCK=$WORK/sock
REPO=$WORK/archive
PRIMARY=$WORK/primary
P1=$(free_port)
P2=$(free_port)
verdict="FAILED"

cleanup() {
  set +e
  trap - EXIT INT TERM
  [ -n "${STANDBY:-}" ] && snap-clone --pgdata "$STANDBY" --destroy drill >/dev/null 2>&1
  [ -n "${DRDIR:-}" ] && snap-clone --destroy dr >/dev/null 2>&1
  [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null
  for d in "$PRIMARY" "${STANDBY:-}"; do
    [ -n "$d" ] && [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  if [ -n "$POOL" ]; then
    # zfs-fuse may call a dataset busy for a moment after its last user exits.
    for _ in $(seq 20); do
      zpool destroy -f "$POOL" >/dev/null 2>&1 && { rmdir "/$POOL" 2>/dev/null; POOL=""; break; }
      sleep 0.5
    done
    if [ -n "$POOL" ]; then
      echo "demo: could not destroy pool $POOL; its file is kept in $WORK (zpool destroy -f $POOL)" >&2
      printf 'demo: %s\n' "$verdict" >&2
      return
    fi
  fi
  rm -rf "$WORK"
  printf 'demo: %s\n' "$verdict" >&2
}
trap cleanup EXIT
trap 'verdict="INTERRUPTED: everything stopped and removed"; exit 130' INT TERM

# --- the snapshot filesystem ----------------------------------------------------------------
# PGDR_DEMO_BACKEND=copy forces the embedded default even where ZFS works.
backend=copy
if [ "${PGDR_DEMO_BACKEND:-auto}" != copy ] && [ "$(id -u)" = 0 ] && command -v zpool >/dev/null; then
  if [ -e /dev/zfs ] || command -v zfs-fuse >/dev/null; then
    if ! [ -e /dev/zfs ] && ! pgrep -x zfs-fuse >/dev/null; then
      zfs-fuse >/dev/null 2>&1 || true
      for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    POOL=pgdrdemo$$
    truncate -s 2G "$WORK/pool.img"
    if zpool create -f -m "/$POOL" "$POOL" "$WORK/pool.img" >/dev/null 2>&1 \
       && zfs create "$POOL/standby" >/dev/null 2>&1; then
      backend=zfs
    else
      POOL=""
    fi
  fi
fi
if [ $backend = zfs ]; then
  STANDBY=/$POOL/standby/data
  say "snapshot backend: zfs (pool $POOL on a 2 GiB file; the standby lives on dataset $POOL/standby)"
else
  STANDBY=$WORK/standby
  say "snapshot backend: copy (no working ZFS here; snap-take uses backup mode through -d)"
fi

mkdir -p "$SOCK" "$REPO" "$PRIMARY"
chmod 0700 "$REPO" "$PRIMARY"
if [ "$(id -u)" = 0 ]; then chown postgres: "$SOCK" "$REPO" "$PRIMARY" "$(dirname "$STANDBY")"; fi

# --- 1. the primary -------------------------------------------------------------------------
as_pg "$PGBIN/initdb" -D "$PRIMARY" -U postgres -A trust -E UTF8 --locale=C >/dev/null
say "primary: initdb in $PRIMARY"
wal-archive init --repo "$REPO" --pgdata "$PRIMARY" >/dev/null
say "wal-archive: init of $REPO, bound to the primary's cluster"
hba-edit -f "$PRIMARY/pg_hba.conf" add --type host --database replication --user replicator \
  --address 127.0.0.1/32 --method scram-sha-256 --comment "pgdr demo standby" >/dev/null
hba-edit -f "$PRIMARY/pg_hba.conf" check >/dev/null
say "primary: hba-edit added 'host replication replicator 127.0.0.1/32 scram-sha-256'"
conf-edit -f "$PRIMARY/postgresql.conf" set "port=$P1" "listen_addresses=127.0.0.1" \
  "unix_socket_directories=$SOCK" wal_level=replica max_wal_senders=5 archive_mode=on \
  "archive_command=$BIN/wal-archive push %p --repo $REPO" archive_timeout=60 >/dev/null
say "primary: conf-edit set wal_level, max_wal_senders, archive_mode, archive_command = wal-archive push"
as_pg "$PGBIN/pg_ctl" -D "$PRIMARY" -l "$WORK/primary.log" -w start >/dev/null
PDSN="host=$SOCK port=$P1 user=postgres dbname=postgres"
psql_p() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$PDSN" "$@"; }
psql_p -c "create role replicator with replication login password 'demo-secret'"
say "primary: started on port $P1, replication role created"

# --- 2. the standby -------------------------------------------------------------------------
as_pg env PGPASSWORD=demo-secret "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U replicator \
  -D "$STANDBY" -X stream -R -c fast
conf-edit -f "$STANDBY/postgresql.conf" set "port=$P2" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$STANDBY" -l "$WORK/standby.log" -w start >/dev/null
SDSN="host=$SOCK port=$P2 user=postgres dbname=postgres"
say "standby: pg_basebackup -X stream -R into $STANDBY, streaming on port $P2"

# --- 3. rows, a snapshot, more rows, the moment T, more rows ---------------------------------
psql_p -c "create table drill(id bigserial primary key, batch int not null, at timestamptz not null default clock_timestamp())"
psql_p -c "insert into drill(batch) select 1 from generate_series(1, 1000)"
wait_replayed() {
  local lsn; lsn=$(psql_p -c "select pg_current_wal_lsn()")
  for _ in $(seq 300); do
    [ "$("$PGBIN/psql" -X -A -t -d "$SDSN" -c "select pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
    sleep 0.1
  done
  echo "demo: the standby did not catch up" >&2; return 1
}
wait_replayed
say "rows: batch 1 (1000 rows) written and replayed on the standby"
if [ $backend = zfs ]; then
  SNAP=$(snap-take --pgdata "$STANDBY" --label demo)
else
  SNAP=$(snap-take --pgdata "$STANDBY" --label demo -d "$SDSN")
fi
say "snap-take: $(json snapshot <<<"$SNAP") (wal_start $(json wal_start <<<"$SNAP"))"
psql_p -c "insert into drill(batch) select 2 from generate_series(1, 1000)"
sleep 1
T=$(psql_p -c "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 1
psql_p -c "insert into drill(batch) select 3 from generate_series(1, 1000)"
say "rows: batch 2 written, the moment T = $T, then batch 3 written"
seg=$(psql_p -c "select pg_walfile_name(pg_current_wal_lsn())")
psql_p -c "select pg_switch_wal()" >/dev/null
for _ in $(seq 300); do
  last=$(psql_p -c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
  [[ "$last" > "$seg" || "$last" == "$seg" ]] && break
  sleep 0.1
done
wait_replayed
say "wal-archive: $(wal-archive list --repo "$REPO" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(t.get("count",0) for t in d.get("timelines",[])), "WAL files archived")')"

# --- 4. monitoring ----------------------------------------------------------------------------
LAG=$(repl-lag -d "$PDSN" --crit-bytes 1GB --min-standbys 1) && rc=0 || rc=$?
say "repl-lag: status $(json status <<<"$LAG") (exit $rc), $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("standbys",[])), "standby(s)")' <<<"$LAG")"

# --- 5. retention -----------------------------------------------------------------------------
PRUNED=$(snap-prune --pgdata "$STANDBY" --keep-last 5 | wal-archive prune - --repo "$REPO")
say "snap-prune --keep-last 5 | wal-archive prune -: $(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["removed"]), "WAL files removed")' <<<"$PRUNED")"

# --- 6. the point-in-time clone -----------------------------------------------------------------
CLONE=$(snap-clone --pgdata "$STANDBY" --before "$T" --recovery-target-time "$T" --name drill --repo "$REPO" --start --wait 120)
CPORT=$(json port <<<"$CLONE")
say "snap-clone: $(json clone <<<"$CLONE") from $(json snapshot <<<"$CLONE") on port $CPORT, recovery $(json recovery.state <<<"$CLONE") at $(json recovery.reached_time <<<"$CLONE") in $(json seconds <<<"$CLONE") s"

counts() { "$PGBIN/psql" -X -A -t -F ' ' -h 127.0.0.1 -p "$1" -U postgres -d postgres \
  -c "select batch, count(*) from drill group by batch order by batch" | tr '\n' ';'; }
on_primary=$(counts "$P1")
on_clone=$(counts "$CPORT")
say "rows on the primary (batch count;): $on_primary"
say "rows on the clone at T        : $on_clone"

snap-clone --pgdata "$STANDBY" --destroy drill >/dev/null
say "snap-clone --destroy drill: clone stopped and removed"

# --- 7. one table, as it was at T, beside the damaged one (seed 001) ---------------------------
psql_p -c "delete from drill where batch = 1; update drill set batch = 0 where batch = 2"
say "damage on the primary after T: batch 1 deleted, batch 2 overwritten: $(counts "$P1")"
RESTORED=$(snap-clone --pgdata "$STANDBY" --before "$T" --recovery-target-time "$T" --repo "$REPO" \
  --into "$PDSN" --table public.drill --wait 120)
COPY=$(json tables.0.restored_as <<<"$RESTORED")
say "snap-clone --into --table public.drill: restored as $COPY ($(json tables.0.rows <<<"$RESTORED") rows, as of $(json as_of <<<"$RESTORED"), $(json pg_dump.path <<<"$RESTORED") and $(json pg_restore.path <<<"$RESTORED"), temporary clone $(json clone.clone <<<"$RESTORED") destroyed) in $(json seconds <<<"$RESTORED") s"
copy_counts=$("$PGBIN/psql" -X -A -t -F ' ' -h 127.0.0.1 -p "$P1" -U postgres -d postgres \
  -c "select batch, count(*) from $COPY group by batch order by batch" | tr '\n' ';')
damaged=$(counts "$P1")
say "rows of public.drill on the primary (damaged): $damaged"
say "rows of $COPY (as at T)      : $copy_counts"

if [ "$on_primary" != "1 1000;2 1000;3 1000;" ] || [ "$on_clone" != "1 1000;2 1000;" ] \
   || [ "$copy_counts" != "1 1000;2 1000;" ] || [ "$damaged" != "0 1000;3 1000;" ]; then
  verdict="FAIL: expected batches 1 and 2 on the clone and in the restored table, got '$on_clone' and '$copy_counts'"
  exit 1
fi

# --- 8. the second region ----------------------------------------------------------------------
source "$ROOT/tests/demo/second-region.sh"

verdict="PASS: the clone, the restored table and the second region's instance hold exactly the rows committed before T ($backend backend)"
