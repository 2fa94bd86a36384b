#!/usr/bin/env bash
# conf-edit vs Debian's pg_conftool: set three parameters (wal_level, max_wal_senders,
# archive_command) in a stock postgresql.conf (PostgreSQL's postgresql.conf.sample with the
# lines Debian's pg_createcluster sets). pg_conftool sets one parameter per run, so the same
# change is three runs of it and one of conf-edit. Goal: conf-edit <= 0.2x pg_conftool.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${CONF_EDIT:-target/release/conf-edit}
N=${N:-50}
[ -x "$BIN" ] || { echo "bench-conf-edit: build first (cargo build --release)"; exit 1; }
command -v pg_conftool >/dev/null || { echo "bench-conf-edit: SKIPPED: pg_conftool (postgresql-common) is not installed"; exit 0; }
sample=$(ls /usr/share/postgresql/*/postgresql.conf.sample 2>/dev/null | sort -V | tail -1)
[ -n "$sample" ] || { echo "bench-conf-edit: SKIPPED: no postgresql.conf.sample"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stock="$work/stock.conf"
cp "$sample" "$stock"
# What pg_createcluster writes into a fresh Debian cluster's postgresql.conf.
for kv in "data_directory=/var/lib/postgresql/15/main" "hba_file=/etc/postgresql/15/main/pg_hba.conf" \
  "ident_file=/etc/postgresql/15/main/pg_ident.conf" "external_pid_file=/var/run/postgresql/15-main.pid" \
  "port=5432" "max_connections=100" "unix_socket_directories=/var/run/postgresql" "ssl=on" \
  "shared_buffers=128MB" "dynamic_shared_memory_type=posix" "max_wal_size=1GB" "min_wal_size=80MB" \
  "log_line_prefix=%m [%p] %q%u@%d " "log_timezone=Etc/UTC" "cluster_name=15/main" \
  "datestyle=iso, mdy" "timezone=Etc/UTC" "default_text_search_config=pg_catalog.english"; do
  "$BIN" -f "$stock" set "$kv" >/dev/null
done
printf "include_dir = 'conf.d'\n" >> "$stock"
mkdir -p "$work/conf.d"

now() { date +%s%N; }
t0=$(now)
for _ in $(seq "$N"); do
  cp "$stock" "$work/a.conf"
  "$BIN" -f "$work/a.conf" set wal_level=replica max_wal_senders=10 'archive_command=wal-archive push %p' >/dev/null
done
t1=$(now)
for _ in $(seq "$N"); do
  cp "$stock" "$work/b.conf"
  pg_conftool "$work/b.conf" set wal_level replica
  pg_conftool "$work/b.conf" set max_wal_senders 10
  pg_conftool "$work/b.conf" set archive_command 'wal-archive push %p'
done
t2=$(now)
# Same result? (both leave the three lines effective)
"$BIN" -f "$work/b.conf" get wal_level max_wal_senders archive_command > "$work/b.json"
"$BIN" -f "$work/a.conf" get wal_level max_wal_senders archive_command > "$work/a.json"
sed -i 's#"file":"[^"]*",##g; s#"line":[0-9]*##g' "$work/a.json" "$work/b.json"
cmp -s "$work/a.json" "$work/b.json" || echo "note: the two tools' results differ: $(cat "$work/a.json") vs $(cat "$work/b.json")"
ours=$(( (t1 - t0) / N / 1000 ))
theirs=$(( (t2 - t1) / N / 1000 ))
printf "%-44s %12s %14s %8s\n" "set 3 parameters in a stock postgresql.conf" "conf-edit" "pg_conftool" "ratio"
printf "%-44s %10sus %12sus %8s\n" "(mean of $N runs, including one cp)" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "%.3fx", a/b}')"
r=$(bench_ratio "$ours" "$theirs" 3)
bench_row conf-edit "set 3 parameters, stock postgresql.conf (mean of $N)" "$ours us" "pg_conftool x3" "$theirs us" \
  "$r" "<= 0.2x" "$(bench_le "${r%x}" 0.2)"
