#!/usr/bin/env bash
# Runs every benchmark (tests/bench/bench-*.sh, or the names given as arguments: `run.sh snap
# repl-lag`), each printing its own comparison, then ONE combined table of every row they
# recorded through bench_row (tests/bench/lib.sh). A failing benchmark becomes a row
# "failed: <its last line>" and the run goes on. Each benchmark gets BENCH_TIMEOUT seconds
# (default 1800); on timeout it is sent TERM and cleans up through its EXIT trap.
# Needs a release build (make bench builds it first).
set -uo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob
if [ $# -gt 0 ]; then
  benches=()
  for n in "$@"; do benches+=("tests/bench/bench-${n#bench-}.sh"); done
else
  benches=(tests/bench/bench-*.sh)
fi
if [ ${#benches[@]} -eq 0 ]; then
  echo "bench: no benchmarks yet"
  exit 0
fi
TIMEOUT=${BENCH_TIMEOUT:-1800}
out=$(mktemp -d /tmp/pgdr-bench-run.XXXXXX)
trap 'rm -rf "$out"' EXIT
export PGDR_BENCH_ROWS=$out/rows
: > "$PGDR_BENCH_ROWS"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for b in "${benches[@]}"; do
  name=$(basename "$b" .sh); name=${name#bench-}
  echo
  echo "== $b ($(date +%H:%M:%S))"
  before=$(wc -l < "$PGDR_BENCH_ROWS")
  s=$(date +%s)
  if [ ! -f "$b" ]; then
    echo "no such benchmark: $b" > "$out/log"; code=1
  else
    timeout -k 60 "$TIMEOUT" bash "$b" 2>&1 | tee "$out/log"
    code=${PIPESTATUS[0]}
  fi
  echo "== $b: exit $code after $(( $(date +%s) - s )) s"
  last=$(grep -v '^[[:space:]]*$' "$out/log" | tail -1 | cut -c1-90)
  if [ "$code" = 124 ] || [ "$code" = 137 ]; then
    printf '%s\tfailed: timed out after %s s (BENCH_TIMEOUT)\t-\t-\t-\t-\t-\t-\n' "$name" "$TIMEOUT" >> "$PGDR_BENCH_ROWS"
  elif [ "$code" != 0 ]; then
    printf '%s\tfailed (exit %s): %s\t-\t-\t-\t-\t-\t-\n' "$name" "$code" "${last//$'\t'/ }" >> "$PGDR_BENCH_ROWS"
  elif [ "$(wc -l < "$PGDR_BENCH_ROWS")" = "$before" ]; then
    printf '%s\tno figures: %s\t-\t-\t-\t-\t-\t-\n' "$name" "${last//$'\t'/ }" >> "$PGDR_BENCH_ROWS"
  fi
done

echo
echo "== pgdr benchmarks: $(uname -m), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - started )) s in all"
echo "   load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after (on $(nproc) cores; above that, figures are noisy)"
echo "   ratio = pgdr / peer (below 1 = pgdr faster or smaller); goal from the tool's issue; met: goal reached"
awk -F'\t' '
  { n++; for (i = 1; i <= 8; i++) { c[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
  END {
    split("benchmark measurement pgdr peer peer-figure ratio goal met", h, " ")
    for (i = 1; i <= 8; i++) if (length(h[i]) > w[i]) w[i] = length(h[i])
    line(h); for (i = 1; i <= 8; i++) { s = ""; for (j = 0; j < w[i]; j++) s = s "-"; d[i] = s }; line(d)
    for (r = 1; r <= n; r++) { for (i = 1; i <= 8; i++) v[i] = c[r, i]; line(v) }
  }
  function line(a,   i, s) {
    s = ""
    for (i = 1; i <= 8; i++) {
      # figures and ratios right-aligned, text left-aligned
      if (i == 3 || i == 5 || i == 6) s = s sprintf("%" w[i] "s", a[i]); else s = s sprintf("%-" w[i] "s", a[i])
      if (i < 8) s = s "  "
    }
    sub(/ +$/, "", s); print s
  }' "$PGDR_BENCH_ROWS"
if grep -q $'^[^\t]*\tfailed' "$PGDR_BENCH_ROWS"; then exit 1; fi
