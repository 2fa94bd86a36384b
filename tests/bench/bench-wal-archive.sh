#!/usr/bin/env bash
# wal-archive push/get against pgBackRest archive-push/archive-get (compress-type=zst,
# compress-level=1) and a durable cp (copy, fsync, rename, fsync dir), on real pgbench segments,
# one process per segment as PostgreSQL calls them, median of alternating rounds.
# Needs: cargo build --release; PostgreSQL server binaries; pgbackrest (optional, apt-get install
# pgbackrest); run as root (servers run as postgres) or as the cluster user.
# Knobs: BENCH_SEGMENTS (64), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=$PWD/target/release/wal-archive
[ -x "$BIN" ] || { echo "bench-wal-archive: build first: cargo build --release"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
N=${BENCH_SEGMENTS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
W=$(mktemp -d /tmp/pgdr-bench.XXXXXX)
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$W"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
PORT=$((20000 + RANDOM % 20000))
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

as_pg mkdir -p "$W/src/pg_wal" "$W/s"
as_pg "$PGBIN/initdb" -D "$W/data" -U postgres -A trust --no-sync >/dev/null
cat >>"$W/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W/s'
archive_mode = on
archive_command = 'test ! -f $W/src/pg_wal/%f && cp %p $W/src/pg_wal/%f'
max_wal_size = 4GB
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null
PGB="$PGBIN/pgbench -h $W/s -p $PORT -U postgres"
as_pg $PGB -i -s 10 -q postgres >/dev/null 2>&1
count() { find "$W/src/pg_wal" -maxdepth 1 -name '0000000100000000000000??' -o -maxdepth 1 -name '000000010000000[0-9A-F]000000??' | wc -l; }
while [ "$(count)" -lt $((N + 1)) ]; do
  as_pg $PGB -n -c 2 -T 3 postgres >/dev/null 2>&1
  as_pg "$PGBIN/psql" -h "$W/s" -p $PORT -U postgres -Atqc 'select pg_switch_wal()' postgres >/dev/null
  sleep 0.5
done
mapfile -t SEGS < <(cd "$W/src/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | head -n "$N")

HAVE_PGBR=0
if command -v pgbackrest >/dev/null; then
  HAVE_PGBR=1
  as_pg tee "$W/pgbackrest.conf" >/dev/null <<EOF
[global]
repo1-path=$W/pgbr
compress-type=zst
compress-level=1
log-level-console=off
log-level-file=off
lock-path=$W/pgbr-lock
[bench]
pg1-path=$W/data
pg1-socket-path=$W/s
pg1-port=$PORT
EOF
fi
PGBR="pgbackrest --config=$W/pgbackrest.conf --stanza=bench"

export W BIN PGBR HAVE_PGBR ROUNDS
printf '%s\n' "${SEGS[@]}" >"$W/names"
as_pg python3 - <<'PY'
import os, subprocess, statistics, time
W, BIN, PGBR = os.environ["W"], os.environ["BIN"], os.environ["PGBR"]
have_pgbr = os.environ["HAVE_PGBR"] == "1"
names = open(f"{W}/names").read().split()
src = f"{W}/src/pg_wal"
Q = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

def sh(cmd): subprocess.run(cmd, shell=True, **Q)

def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)

def timed(cmds):
    t = time.perf_counter()
    for c in cmds:
        subprocess.run(c, **Q)
    return time.perf_counter() - t

tools = {}
def reset(tool):
    sh(f"rm -rf {W}/repo {W}/pgbr {W}/cp {W}/out; mkdir -p {W}/out {W}/cp")
    if tool == "pgbackrest":
        sh(f"{PGBR} stanza-create")
    if tool == "wal-archive":
        sh(f"{BIN} init --repo {W}/repo >/dev/null")

push = {
    "wal-archive": lambda n: [BIN, "push", f"{src}/{n}", "--repo", f"{W}/repo"],
    "pgbackrest": lambda n: PGBR.split() + ["archive-push", f"{src}/{n}"],
    "durable cp": lambda n: ["sh", "-c", f"cp {src}/{n} {W}/cp/.{n}.tmp && sync {W}/cp/.{n}.tmp && mv {W}/cp/.{n}.tmp {W}/cp/{n} && sync {W}/cp"],
}
get = {
    "wal-archive": lambda n: [BIN, "get", n, f"{W}/out/RECOVERYXLOG", "--repo", f"{W}/repo"],
    "pgbackrest": lambda n: PGBR.split() + ["archive-get", n, f"{W}/out/RECOVERYXLOG"],
    "durable cp": lambda n: ["sh", "-c", f"cp {W}/cp/{n} {W}/out/.t && sync {W}/out/.t && mv {W}/out/.t {W}/out/RECOVERYXLOG && sync {W}/out"],
}
order = ["wal-archive", "pgbackrest", "durable cp"] if have_pgbr else ["wal-archive", "durable cp"]
res = {t: {"push": [], "get": [], "stored": 0} for t in order}
for r in range(int(os.environ["ROUNDS"])):
    for t in (order if r % 2 == 0 else list(reversed(order))):
        reset(t)
        res[t]["push"].append(timed([push[t](n) for n in names]))
        res[t]["stored"] = du({"wal-archive": f"{W}/repo/wal", "pgbackrest": f"{W}/pgbr/archive", "durable cp": f"{W}/cp"}[t])
        res[t]["get"].append(timed([get[t](n) for n in names]))

# Peak memory of one push (max RSS, KiB) over a few segments.
def peak(cmdf):
    m = 0
    for n in names[:4]:
        out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmdf(n), capture_output=True, text=True)
        m = max(m, int(out.stderr.strip().splitlines()[-1]))
    return m
peaks = {}
for t in order:
    reset(t)
    peaks[t] = peak(push[t]) if os.path.exists("/usr/bin/time") else 0

n = len(names)
med = lambda xs: statistics.median(xs)
print(f"wal-archive benchmark: {n} pgbench segments of 16 MiB, one process per segment, median of {os.environ['ROUNDS']} rounds")
print(f"{'tool':<12} {'push s':>8} {'ms/seg':>7} {'get s':>8} {'ms/seg':>7} {'stored MiB':>11} {'peak push MiB':>14}")
for t in order:
    p, g = med(res[t]["push"]), med(res[t]["get"])
    print(f"{t:<12} {p:8.2f} {1000*p/n:7.1f} {g:8.2f} {1000*g/n:7.1f} {res[t]['stored']/2**20:11.1f} {peaks[t]/1024:14.1f}")
wa = res["wal-archive"]
print()
print(f"{'ratio (wal-archive / peer)':<28} {'push':>6} {'get':>6} {'stored':>7}")
for t in order[1:]:
    print(f"{'vs ' + t:<28} {med(wa['push'])/med(res[t]['push']):6.2f} {med(wa['get'])/med(res[t]['get']):6.2f} {wa['stored']/max(1,res[t]['stored']):7.3f}")

# Rows for the combined table (tests/bench/run.sh): measurement, pgdr, peer, peer figure, ratio, goal, met.
rows = []
def row(m, ours, peer, theirs, ratio, goal, limit):
    rows.append([m, ours, peer, theirs, f"{ratio:.2f}x", goal, "yes" if ratio <= limit else "no"])
R = os.environ["ROUNDS"]
for t, pg, gg in (("pgbackrest", 0.5, 0.5), ("durable cp", 1.0, None)):
    if t not in res:
        continue
    name = "pgBackRest zst-1" if t == "pgbackrest" else "durable cp"
    p, q = med(wa["push"]), med(res[t]["push"])
    row(f"push {n} segments, 1 process each (median of {R})", f"{1000*p/n:.1f} ms/seg", name, f"{1000*q/n:.1f} ms/seg", p / q, f"<= {pg}x", pg)
    if gg:
        p, q = med(wa["get"]), med(res[t]["get"])
        row(f"get {n} segments (median of {R})", f"{1000*p/n:.1f} ms/seg", name, f"{1000*q/n:.1f} ms/seg", p / q, f"<= {gg}x", gg)
        row(f"stored bytes, {n} segments", f"{wa['stored']/2**20:.1f} MiB", name, f"{res[t]['stored']/2**20:.1f} MiB", wa["stored"] / max(1, res[t]["stored"]), "<= 1.0x", 1.0)
if peaks.get("wal-archive"):
    other = "pgbackrest" if "pgbackrest" in peaks else "durable cp"
    rows.append(["peak memory of one push (max RSS)", f"{peaks['wal-archive']/1024:.1f} MiB", other, f"{peaks[other]/1024:.1f} MiB",
                 f"{peaks['wal-archive']/max(1, peaks[other]):.2f}x", "<= 64 MiB", "yes" if peaks["wal-archive"] <= 64 * 1024 else "no"])
with open(f"{W}/rows", "w") as f:
    for r in rows:
        f.write("\t".join(r) + "\n")
PY
while IFS=$'\t' read -r m ours peer theirs ratio goal met; do
  bench_row wal-archive "$m" "$ours" "$peer" "$theirs" "$ratio" "$goal" "$met"
done < "$W/rows"
