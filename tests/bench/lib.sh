# Shared by tests/bench/bench-*.sh (sourced). Each script prints its own table; with
# PGDR_BENCH_ROWS set (tests/bench/run.sh sets it) it also appends its rows to that file, one
# tab-separated line each, for the combined table:
#   benchmark  measurement  pgdr  peer-name  peer-figure  ratio  goal  verdict
# ratio is always pgdr / peer (lower is better for times), so that every goal reads the same way.

# A TERM/INT/HUP (run.sh's timeout, Ctrl-C) exits through the script's EXIT trap, so its
# servers, pools and mounts are cleaned up then too.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# bench_row BENCHMARK MEASUREMENT PGDR PEER PEER_FIGURE RATIO GOAL [VERDICT]
bench_row() {
  [ -n "${PGDR_BENCH_ROWS:-}" ] || return 0
  local f out=() 
  for f in "$@"; do
    f=${f//$'\t'/ }; f=${f//$'\n'/ }
    out+=("${f:--}")
  done
  while [ ${#out[@]} -lt 8 ]; do out+=("-"); done
  (IFS=$'\t'; printf '%s\n' "${out[*]}") >> "$PGDR_BENCH_ROWS"
}

# bench_ratio A B [DECIMALS]: A / B as "0.42x", or "-" when either is not a positive number.
bench_ratio() {
  awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "-"; exit }
    printf "%." d "fx\n", a / b }'
}

# bench_le A B: "yes" when A <= B, "no" when not, "-" when either is not a number.
bench_le() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) { print "-"; exit }
    print (a + 0 <= b + 0) ? "yes" : "no" }'
}

# bench_fmt X [DECIMALS]: a number rounded, anything else as is.
bench_fmt() {
  awk -v x="$1" -v d="${2:-2}" 'BEGIN { if (x ~ /^[0-9]*\.?[0-9]+$/) printf "%." d "f\n", x; else print x }'
}

# bench_s3_start DIR: moto's S3 server on 127.0.0.1 over TLS with a CA made in DIR, a bucket
# "bench", and the AWS_* variables that point both pgdr and pgBackRest at it (S3PORT is the TLS
# port). moto runs through the tests' launcher with object requests served concurrently, as a
# real store serves them, on plain HTTP behind socat for TLS: pgBackRest talks to S3 over TLS
# only, and werkzeug ends TLS connections without a close_notify, which pgBackRest's OpenSSL 3
# reports as "unexpected eof". Both tools go through the same socat. socat sets TCP_NODELAY on
# both sides, as a real store's front end does: without it werkzeug's header and body writes
# met Nagle and the client's delayed ACK, and every response waited about 40 ms (a curl GET of
# a small object: 51 ms through socat, 13 ms with nodelay, 5 ms to moto directly), which both
# tools paid once per request. bench_s3_stop ends it.
bench_s3_start() {
  local w=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgdr bench CA" \
    -keyout "$w/ca.key" -out "$w/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$w/s3.key" -out "$w/s3.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1\n' > "$w/san"
  openssl x509 -req -in "$w/s3.csr" -CA "$w/ca.pem" -CAkey "$w/ca.key" -CAcreateserial -days 2 \
    -extfile "$w/san" -out "$w/s3.pem" >/dev/null 2>&1
  chmod 644 "$w"/*.pem "$w"/*.key
  S3PORT=$((40000 + RANDOM % 20000))
  local motoport=$((S3PORT + 1))
  PGDR_MOTO_CONCURRENT=1 python3 crates/testkit/src/moto_launcher.py -H 127.0.0.1 -p "$motoport" >"$w/moto.log" 2>&1 &
  BENCH_MOTO_PID=$!
  cat "$w/s3.pem" "$w/s3.key" > "$w/s3both.pem"
  socat OPENSSL-LISTEN:"$S3PORT",bind=127.0.0.1,reuseaddr,fork,nodelay,cert="$w/s3both.pem",verify=0 \
    TCP:127.0.0.1:"$motoport",nodelay >"$w/socat.log" 2>&1 &
  BENCH_SOCAT_PID=$!
  export AWS_ACCESS_KEY_ID=pgdr-bench AWS_SECRET_ACCESS_KEY=pgdr-bench-secret AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL=https://127.0.0.1:$S3PORT SSL_CERT_FILE=$w/ca.pem AWS_CA_BUNDLE=$w/ca.pem
  local _
  for _ in $(seq 100); do aws s3 ls >/dev/null 2>&1 && break; sleep 0.2; done
  aws s3 mb s3://bench >/dev/null
}

# bench_s3_conf: pgBackRest's [global] lines for the server of bench_s3_start (bucket "bench").
bench_s3_conf() {
  cat <<CONF
repo1-type=s3
repo1-s3-bucket=bench
repo1-s3-endpoint=127.0.0.1
repo1-storage-port=$S3PORT
repo1-s3-region=us-east-1
repo1-s3-key=$AWS_ACCESS_KEY_ID
repo1-s3-key-secret=$AWS_SECRET_ACCESS_KEY
repo1-s3-uri-style=path
repo1-storage-verify-tls=n
CONF
}

bench_s3_stop() {
  [ -n "${BENCH_MOTO_PID:-}" ] && kill "$BENCH_MOTO_PID" 2>/dev/null
  [ -n "${BENCH_SOCAT_PID:-}" ] && kill "$BENCH_SOCAT_PID" 2>/dev/null
  return 0
}

# bench_zfs_daemon: starts zfs-fuse when the kernel has no ZFS and no zfs-fuse runs (as the
# tests' ZfsPool::create does), and waits until it answers; returns 1 when it cannot.
bench_zfs_daemon() {
  if [ -e /dev/zfs ] && ! command -v zfs-fuse >/dev/null; then return 0; fi
  pgrep -x zfs-fuse >/dev/null && return 0
  command -v zfs-fuse >/dev/null && [ -e /dev/fuse ] || return 1
  # Without the caller's other descriptors: a daemon must not keep a lock file open.
  zfs-fuse </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- || true
  local i
  for i in $(seq 1 80); do
    pgrep -x zfs-fuse >/dev/null && zpool list >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  return 1
}

# bench_as_pg CMD...: CMD as the postgres OS user when the bench runs as root (servers run as
# postgres), else as the caller (then the cluster's owner).
bench_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# bench_port: a free TCP port number, the kernel's choice on 127.0.0.1.
bench_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_psql PORT SOCKDIR SQL: SQL's result (unaligned, no headers) from the server on PORT with
# its socket in SOCKDIR, database postgres, as bench_as_pg. Reads PGBIN.
bench_psql() {
  bench_as_pg "$PGBIN/psql" -X -qAt -h "$2" -p "$1" -U postgres -d postgres -c "$3"
}

# bench_pgbench_wal DIR N SCALE CLIENTS SECONDS [switch]: N real WAL segments written by
# pgbench, for the wal-archive benches. A throwaway server (bench_as_pg) in DIR/data, on a
# random port and only its socket in DIR/s, archive_command copying each segment to
# DIR/src/pg_wal; pgbench -i -s SCALE, then runs of pgbench -n -c CLIENTS -T SECONDS until N + 1
# segments are archived (the first N complete); with "switch", pg_switch_wal() and half a
# second's pause after each run. The server is left running, its log in DIR/log: the caller
# stops it (pg_ctl -D DIR/data -m immediate stop). DIR must be the server user's.
# Reads PGBIN. Sets PORT (the server's) and SEGS (the first N segment names, in order).
bench_pgbench_wal() {
  local w=$1 n=$2 scale=$3 clients=$4 seconds=$5 switch=${6:-}
  PORT=$((20000 + RANDOM % 20000))
  bench_as_pg mkdir -p "$w/src/pg_wal" "$w/s"
  bench_as_pg "$PGBIN/initdb" -D "$w/data" -U postgres -A trust --no-sync >/dev/null
  cat >>"$w/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$w/s'
archive_mode = on
archive_command = 'test ! -f $w/src/pg_wal/%f && cp %p $w/src/pg_wal/%f'
max_wal_size = 4GB
CONF
  bench_as_pg "$PGBIN/pg_ctl" -D "$w/data" -l "$w/log" -w start >/dev/null
  local pgb=("$PGBIN/pgbench" -h "$w/s" -p "$PORT" -U postgres)
  bench_as_pg "${pgb[@]}" -i -s "$scale" -q postgres >/dev/null 2>&1
  while [ "$(find "$w/src/pg_wal" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)" -lt $((n + 1)) ]; do
    bench_as_pg "${pgb[@]}" -n -c "$clients" -T "$seconds" postgres >/dev/null 2>&1
    if [ "$switch" = switch ]; then
      bench_psql "$PORT" "$w/s" 'select pg_switch_wal()' >/dev/null
      sleep 0.5
    fi
  done
  mapfile -t SEGS < <(cd "$w/src/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | head -n "$n")
}

# bench_pgbench_wal_pgbr DIR: pgBackRest's configuration DIR/pgbackrest.conf for the server of
# bench_pgbench_wal DIR, stanza "bench" (database user postgres): zst level 1, no logs, lock path
# DIR/pgbr-lock, and the lines read from stdin in [global] (the repository). Reads PORT.
bench_pgbench_wal_pgbr() {
  local w=$1
  {
    printf '[global]\n'
    cat
    cat <<CONF
compress-type=zst
compress-level=1
log-level-console=off
log-level-file=off
lock-path=$w/pgbr-lock
[bench]
pg1-path=$w/data
pg1-socket-path=$w/s
pg1-port=$PORT
pg1-user=postgres
CONF
  } | bench_as_pg tee "$w/pgbackrest.conf" >/dev/null
}

# bench_pgbr_conf FILE DATA PORT SOCKDIR LOCK SPOOL [ASYNC_COMMAND]: pgBackRest's configuration
# FILE (the postgres user's) for stanza "b", the server in DATA (socket in SOCKDIR, port PORT):
# zst level 1, warnings only on the console and stderr, no log file, lock path LOCK, spool path
# SPOOL, and the lines read from stdin in [global] (the repository, the bench's own options).
# With ASYNC_COMMAND (archive-push or archive-get), that command is asynchronous as in the user
# guide: archive-async=y and [global:ASYNC_COMMAND] process-max=2.
bench_pgbr_conf() {
  local file=$1 data=$2 port=$3 sock=$4 lock=$5 spool=$6 async=${7:-}
  {
    cat <<CONF
[global]
compress-type=zst
compress-level=1
log-level-console=warn
log-level-stderr=warn
log-level-file=off
lock-path=$lock
spool-path=$spool
CONF
    cat
    [ -z "$async" ] || printf 'archive-async=y\n[global:%s]\nprocess-max=2\n' "$async"
    printf '[b]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%s\n' "$data" "$sock" "$port"
  } > "$file"
  chown postgres: "$file"
}

# bench_archiving_primary DATA PORT SOCKDIR LOG REPO PGBR_CONF SCALE [INITDB_OPTION...]: a
# running primary with pgbench's tables, archiving through wal-archive and pgBackRest, for the
# WAL and snapshot benches (run as root; the server as postgres). DATA is made (postgres's, mode
# 700) and initdb'd (-U postgres -A trust, then INITDB_OPTIONs); its postgresql.conf gets port
# PORT, its socket in SOCKDIR only (listen_addresses ''), then the lines read from stdin
# (archive_command and the bench's own settings). REPO becomes a wal-archive repository for
# DATA (`wal-archive init`: as root it belongs to DATA's owner), the server starts (log LOG),
# stanza "b" of PGBR_CONF (bench_pgbr_conf) is created and pgbench -i -s SCALE fills it.
# Reads PGBIN and BIN (the directory holding wal-archive). Sets nothing.
bench_archiving_primary() {
  local data=$1 port=$2 sock=$3 log=$4 repo=$5 conf=$6 scale=$7
  shift 7
  mkdir -p "$data"; chown postgres: "$data"; chmod 700 "$data"
  bench_as_pg "$PGBIN/initdb" -D "$data" -A trust -U postgres "$@" >/dev/null
  { printf "port = %s\nunix_socket_directories = '%s'\nlisten_addresses = ''\n" "$port" "$sock"; cat; } >> "$data/postgresql.conf"
  "$BIN/wal-archive" init --repo "$repo" --pgdata "$data" >/dev/null
  bench_as_pg "$PGBIN/pg_ctl" -D "$data" -l "$log" -w start >/dev/null
  bench_as_pg pgbackrest --config="$conf" --stanza=b stanza-create >/dev/null
  bench_as_pg "$PGBIN/pgbench" -i -q -s "$scale" -h "$sock" -p "$port" -U postgres postgres >/dev/null 2>&1
}

# bench_wait_paused PORT SOCKDIR DATA SECONDS: waits until the server in DATA (on PORT, socket
# in SOCKDIR) is paused at its recovery target; returns 1 when it stopped running (no
# postmaster.pid) or after SECONDS. Reads PGBIN.
bench_wait_paused() {
  local deadline=$(($(date +%s) + $4))
  until [ "$(bench_psql "$1" "$2" "select pg_get_wal_replay_pause_state()" 2>/dev/null)" = paused ]; do
    [ -f "$3/postmaster.pid" ] || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# bench_target_time DATA PORT SOCKDIR: a recovery target time T on the running primary in DATA:
# one second after the last work, T, one second, then a table "after_t" created (so a server
# recovered to T must not have it); the segment holding it switched out and waited for until
# archived, and the primary stopped (fast) and everything synced. Reads PGBIN. Sets T
# (clock_timestamp() as the server prints it).
bench_target_time() {
  local data=$1 port=$2 sock=$3 seg
  sleep 1
  T=$(bench_psql "$port" "$sock" "select clock_timestamp()")
  sleep 1
  bench_psql "$port" "$sock" "create table after_t as select 1" >/dev/null
  seg=$(bench_psql "$port" "$sock" "select pg_walfile_name(pg_switch_wal())")
  until [ "$(bench_psql "$port" "$sock" "select coalesce(last_archived_wal >= '$seg', false) from pg_stat_archiver")" = t ]; do sleep 0.2; done
  bench_as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  sync
}

# bench_pgbr_pitr CONF DIR T PORT SOCKDIR LOG SECONDS: pgBackRest's point-in-time restore of
# stanza "b" (CONF) into DIR (empty, the postgres user's): --type=time to T,
# --target-action=pause, restore_command its archive-get through the same CONF; then started
# on PORT with archive_mode off (log LOG; its socket in SOCKDIR, as the original's) and waited
# for (bench_wait_paused, SECONDS) until paused at T. Returns 1 when the restore failed, 2 when
# the server did not start or pause. The caller stops the server. Reads PGBIN.
bench_pgbr_pitr() {
  local conf=$1 dir=$2 t=$3 port=$4 sock=$5 log=$6 wait=$7
  bench_as_pg pgbackrest --config="$conf" --stanza=b --pg1-path="$dir" --type=time "--target=$t" --target-action=pause \
    "--recovery-option=restore_command=pgbackrest --config=$conf --stanza=b --pg1-path=$dir archive-get %f \"%p\"" restore >/dev/null || return 1
  printf "port = %d\narchive_mode = off\n" "$port" >> "$dir/postgresql.auto.conf"
  bench_as_pg "$PGBIN/pg_ctl" -D "$dir" -l "$log" -w -t "$wait" start >/dev/null 2>&1 && bench_wait_paused "$port" "$sock" "$dir" "$wait" || return 2
}
