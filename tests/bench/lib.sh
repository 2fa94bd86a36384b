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
# reports as "unexpected eof". Both tools go through the same socat. bench_s3_stop ends it.
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
  socat OPENSSL-LISTEN:"$S3PORT",bind=127.0.0.1,reuseaddr,fork,cert="$w/s3both.pem",verify=0 \
    TCP:127.0.0.1:"$motoport" >"$w/socat.log" 2>&1 &
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
