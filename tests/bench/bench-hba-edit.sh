#!/usr/bin/env bash
# hba-edit list and check on a 100,000-line pg_hba.conf (goal: under 100 ms each), against
# PostgreSQL's own reading of the same file: SELECT count(*) FROM pg_hba_file_rules.
# Needs `cargo build --release` first (make bench does it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=target/release/hba-edit
[ -x "$BIN" ] || { echo "bench-hba-edit: build first: cargo build --release" >&2; exit 1; }
RUNS=${RUNS:-7}
work=$(mktemp -d /tmp/pgdr-bench-hba.XXXXXX)
pgpid=""
cleanup() {
  if [ -n "$pgpid" ]; then run_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The file: rules of every kind, comments, lists, IPv4 and IPv6, options.
awk 'BEGIN {
  print "# generated: 100,000 lines"
  for (i = 0; i < 100000; i++) {
    k = i % 10
    if (k == 0) printf "local   db%d  user%d  peer\n", i, i
    else if (k == 1) printf "host    all  +group%d  10.%d.%d.0/24  scram-sha-256\n", i % 50, i % 256, int(i / 256) % 256
    else if (k == 2) printf "# comment %d\n", i
    else if (k == 3) printf "hostssl db%d,db%d app%d fe80::%x/64 cert clientcert=verify-full map=m%d\n", i, i + 1, i, i % 65536, i % 10
    else printf "host    all  all  %d.%d.%d.%d/32  %s\n", 10 + i % 200, int(i / 200) % 256, i % 256, i % 7, (i % 2 ? "md5" : "scram-sha-256")
  }
}' > "$work/pg_hba.conf"

# Best of RUNS, in milliseconds.
best_ms() {
  local best=999999 s e ms
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    ms=$(( (e - s) / 1000000 )); [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best"
}
list_ms=$(best_ms "$BIN" -f "$work/pg_hba.conf" --pg-version 15 list)
check_ms=$(best_ms bash -c "'$BIN' -f '$work/pg_hba.conf' --pg-version 15 check || true")

# The peer: PostgreSQL itself reading the file through pg_hba_file_rules.
peer_ms="n/a"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ]; then
  [ "$(id -u)" = 0 ] && chown postgres "$work"
  if run_pg "$PGBIN/initdb" -D "$work/data" -A trust -U postgres >/dev/null 2>&1; then
    port=$(( 20000 + RANDOM % 20000 ))
    printf "port = %d\nunix_socket_directories = '%s'\nlisten_addresses = ''\n" "$port" "$work" >> "$work/data/postgresql.conf"
    if run_pg "$PGBIN/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null 2>&1; then
      pgpid=1
      cp "$work/pg_hba.conf" "$work/data/pg_hba.conf"   # read by the view, not loaded
      peer_ms=$(best_ms "$PGBIN/psql" -h "$work" -p "$port" -U postgres -XAtc "SELECT count(*) FROM pg_hba_file_rules" postgres)
    fi
  fi
fi

ratio() { if [ "$2" = "n/a" ] || [ "$1" = 0 ]; then echo "n/a"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; fi; }
printf "%-44s %10s %22s %8s\n" "hba-edit, 100,000-line pg_hba.conf" "pgdr (ms)" "PostgreSQL view (ms)" "ratio"
printf "%-44s %10s %22s %8s\n" "list" "$list_ms" "$peer_ms" "$(ratio "$list_ms" "$peer_ms")"
printf "%-44s %10s %22s %8s\n" "check (errors + warnings + shadowing)" "$check_ms" "$peer_ms" "$(ratio "$check_ms" "$peer_ms")"
echo "goal: under 100 ms each; best of $RUNS runs; ratio = PostgreSQL time / pgdr time"
bench_row hba-edit "list, 100,000-line pg_hba.conf (best of $RUNS)" "$list_ms ms" "pg_hba_file_rules" "$peer_ms ms" \
  "$(bench_ratio "$list_ms" "$peer_ms")" "< 100 ms" "$(bench_le "$list_ms" 99.999)"
bench_row hba-edit "check, same file (best of $RUNS)" "$check_ms ms" "pg_hba_file_rules" "$peer_ms ms" \
  "$(bench_ratio "$check_ms" "$peer_ms")" "< 100 ms" "$(bench_le "$check_ms" 99.999)"
