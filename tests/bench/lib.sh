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
