#!/usr/bin/env bash
# Logical snapshots and single-table restore (issue 16), pgbench scale SCALE (default 64):
#  - snap-take --logical --jobs 2 --to REPO vs bare pg_dump -Fd -j 2 (the floor: gzip, no
#    checksums) and vs pg_dump -Fd -j 2 plus tar and age of the result (what a DBA does by
#    hand to get one encrypted file); seconds, and bytes stored vs pg_dump's own output;
#  - snap-clone --into --table pgbench_accounts into a database that has a pgbench_accounts
#    (restored beside it as pgbench_accounts_pgdr_…, with its primary key) vs pg_restore of
#    the table, its data and its primary key (-L with those entries of pg_restore -l: -t alone
#    leaves the key out) into a database without one, then ALTER TABLE … RENAME and ALTER
#    INDEX … RENAME (the floor).
# The same pg_dump and pg_restore (PGBIN, the newest distribution server's) for both sides.
# pg_back is not packaged for this distribution, so it is not measured.
# Each side is run ROUNDS times (default 3), taking turns, and the medians compared: other
# work on the machine moves single runs by a third.
# Needs root, age (apt-get install -y age), a release build. Knobs: SCALE (64), ROUNDS (3),
# KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=$PWD/target/release
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SCALE=${SCALE:-64}
ROUNDS=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "bench-logical: needs root; skipped"; exit 0; }
command -v age >/dev/null || { echo "bench-logical: age not installed; skipped"; exit 0; }
WORK=$(mktemp -d /tmp/pgdr-blg.XXXXXX)
chmod 755 "$WORK"; chown postgres "$WORK"
export PGDR_CLONE_DIR=$WORK/clones
cleanup() {
  set +e
  [ -f "$WORK/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$WORK"
}
[ -n "${KEEP:-}" ] || trap cleanup EXIT
pg() { runuser -u postgres -- "$@"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
say() { echo "bench-logical: $*" >&2; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
psqlq() { pg "$PGBIN/psql" -X -qAt -h "$WORK" -p "$PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
json_num() { grep -o "\"$1\":[0-9]*" | tail -1 | cut -d: -f2; }
conn() { echo "host=$WORK port=$PORT user=postgres dbname=$1"; }

pg "$PGBIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
cat >> "$WORK/data/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$WORK'
listen_addresses = ''
max_wal_size = 4GB
CONF
pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
say "pgbench -i -s $SCALE"
pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$WORK" -p "$PORT" -U postgres postgres >/dev/null 2>&1
psqlq "vacuum analyze" >/dev/null
"$BIN/wal-archive" init --repo "$WORK/repo" -d "$(conn postgres)" >/dev/null
sync

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
age-keygen -o "$WORK/key" 2>/dev/null
recipient=$(grep -o 'age1[0-9a-z]*' "$WORK/key" | head -1)
psqlq "create database tgt" >/dev/null
pg "$PGBIN/pgbench" -i -q -s 1 -h "$WORK" -p "$PORT" -U postgres tgt >/dev/null 2>&1
: > "$WORK/t_pgdr"; : > "$WORK/t_dump"; : > "$WORK/t_manual"; : > "$WORK/t_rpgdr"; : > "$WORK/t_rpeer"
for round in $(seq "$ROUNDS"); do
  say "round $round of $ROUNDS: snap-take --logical --jobs 2 --to REPO, then pg_dump -Fd -j 2 (+ tar + age)"
  sync
  a=$(now)
  doc=$("$BIN/snap-take" --logical -d "$(conn postgres)" --jobs 2 --to "$WORK/repo" --pg-bin "$PGBIN")
  secs "$a" "$(now)" >> "$WORK/t_pgdr"
  snap=$(echo "$doc" | json_field snapshot)
  b_pgdr=$(echo "$doc" | grep -o '"stored_bytes":[0-9]*' | tail -1 | cut -d: -f2)
  rm -rf "$WORK/dump" "$WORK/dump.tar.age"
  sync
  a=$(now)
  pg "$PGBIN/pg_dump" -Fd -j 2 -f "$WORK/dump" -h "$WORK" -p "$PORT" -U postgres postgres
  t=$(secs "$a" "$(now)")
  echo "$t" >> "$WORK/t_dump"
  a=$(now)
  tar -C "$WORK" -cf - dump | age -r "$recipient" > "$WORK/dump.tar.age"
  echo "$t + $(secs "$a" "$(now)")" | bc -l >> "$WORK/t_manual"
  b_dump=$(du -sb "$WORK/dump" | cut -f1)
  b_manual=$(stat -c %s "$WORK/dump.tar.age")

  say "round $round of $ROUNDS: single-table restore of pgbench_accounts, snap-clone --into then pg_restore + RENAME"
  psqlq "drop database if exists peer" >/dev/null
  psqlq "create database peer" >/dev/null
  sync
  a=$(now)
  rep=$("$BIN/snap-clone" --snapshot "$snap" --repo "$WORK/repo" --into "$(conn tgt)" --table pgbench_accounts --pg-bin "$PGBIN")
  secs "$a" "$(now)" >> "$WORK/t_rpgdr"
  rows=$(echo "$rep" | json_num rows)
  [ "$rows" = "$((SCALE * 100000))" ] || { say "snap-clone restored $rows rows: $rep"; exit 1; }
  copy=$(echo "$rep" | json_field restored_as)
  psqlq "drop table $copy" tgt >/dev/null
  a=$(now)
  pg "$PGBIN/pg_restore" -l "$WORK/dump" \
    | grep -E ' (TABLE|TABLE DATA) public pgbench_accounts |CONSTRAINT public pgbench_accounts pgbench_accounts_pkey ' > "$WORK/list"
  pg "$PGBIN/pg_restore" -L "$WORK/list" -d "$(conn peer)" "$WORK/dump"
  psqlq "alter table pgbench_accounts rename to pgbench_accounts_restored; alter index pgbench_accounts_pkey rename to pgbench_accounts_restored_pkey" peer >/dev/null
  secs "$a" "$(now)" >> "$WORK/t_rpeer"
done
t_pgdr=$(median < "$WORK/t_pgdr"); t_dump=$(median < "$WORK/t_dump"); t_manual=$(median < "$WORK/t_manual")
t_rpgdr=$(median < "$WORK/t_rpgdr"); t_rpeer=$(median < "$WORK/t_rpeer")

echo
printf '%-58s %10s %10s\n' "scale $SCALE, medians of $ROUNDS" "pgdr" "peer"
printf '%-58s %10s %10s\n' "snap-take --logical --jobs 2 vs pg_dump -Fd -j 2 (s)" "$(bench_fmt "$t_pgdr")" "$(bench_fmt "$t_dump")"
printf '%-58s %10s %10s\n' "  vs pg_dump -Fd -j 2 + tar + age (s)" "$(bench_fmt "$t_pgdr")" "$(bench_fmt "$t_manual")"
printf '%-58s %10s %10s\n' "  bytes stored vs pg_dump's output" "$b_pgdr" "$b_dump"
printf '%-58s %10s %10s\n' "  bytes stored vs tar + age of it" "$b_pgdr" "$b_manual"
printf '%-58s %10s %10s\n' "pgbench_accounts: snap-clone --into vs pg_restore + RENAME (s)" "$(bench_fmt "$t_rpgdr")" "$(bench_fmt "$t_rpeer")"
r1=$(bench_ratio "$t_pgdr" "$t_dump"); r2=$(bench_ratio "$t_pgdr" "$t_manual")
r3=$(bench_ratio "$b_pgdr" "$b_dump"); r4=$(bench_ratio "$t_rpgdr" "$t_rpeer")
bench_row logical "snap-take --logical -j2, scale $SCALE (s)" "$(bench_fmt "$t_pgdr")" "pg_dump -Fd -j2" "$(bench_fmt "$t_dump")" "$r1" "<= 1.10x" "$(bench_le "${r1%x}" 1.10)"
bench_row logical "snap-take --logical -j2, scale $SCALE (s)" "$(bench_fmt "$t_pgdr")" "pg_dump -Fd -j2 + tar + age" "$(bench_fmt "$t_manual")" "$r2" "<= 1.10x" "$(bench_le "${r2%x}" 1.10)"
bench_row logical "bytes stored, scale $SCALE" "$b_pgdr" "pg_dump -Fd output" "$b_dump" "$r3" "<= 1.00x" "$(bench_le "${r3%x}" 1.00)"
bench_row logical "restore pgbench_accounts beside its namesake (s)" "$(bench_fmt "$t_rpgdr")" "pg_restore -L table+data+pkey + RENAME" "$(bench_fmt "$t_rpeer")" "$r4" "<= 1.10x" "$(bench_le "${r4%x}" 1.10)"
