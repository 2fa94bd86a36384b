#!/usr/bin/env bash
# wal-archive push/get against pgBackRest archive-push/archive-get (compress-type=zst,
# compress-level=1) and a durable cp (copy, fsync, rename, fsync dir; for get, a plain cp as the
# floor), on real pgbench segments (pgbench -i then pgbench runs, full segments, no forced
# switches), one process per segment as PostgreSQL calls them, median of alternating rounds;
# peak memory (max RSS, GNU time) of one push and one get next to pgBackRest's, and of a push
# and get of a 1 GiB segment (initdb --wal-segsize=1024 writes one); the machine's load before
# and after.
# Needs: cargo build --release; PostgreSQL server binaries; pgbackrest (optional, apt-get install
# pgbackrest); GNU time; run as root (servers run as postgres) or as the cluster user.
# Knobs: BENCH_SEGMENTS (64), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/wal-archive
[ -x "$BIN" ] || { echo "bench-wal-archive: build first: cargo build --release"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
N=${BENCH_SEGMENTS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
W=$(mktemp -d /tmp/pgdr-bench.XXXXXX)
[ "$(id -u)" != 0 ] || chown postgres: "$W"
cleanup() {
  bench_as_pg "$PGBIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# Real pgbench segments, full ones (no forced switches).
bench_pgbench_wal "$W" "$N" 20 4 5

HAVE_PGBR=0
if command -v pgbackrest >/dev/null; then
  HAVE_PGBR=1
  bench_pgbench_wal_pgbr "$W" <<<"repo1-path=$W/pgbr"
fi
PGBR="pgbackrest --config=$W/pgbackrest.conf --stanza=bench"

# A cluster with 1 GiB segments, for memory: initdb writes its first segment, 1 GiB.
bench_as_pg "$PGBIN/initdb" -D "$W/gib" -U postgres -A trust --no-sync --wal-segsize=1024 >/dev/null
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
export W BIN PGBR HAVE_PGBR ROUNDS LOAD_BEFORE
printf '%s\n' "${SEGS[@]}" >"$W/names"
bench_as_pg python3 - <<'PY'
import os, subprocess, statistics, time
W, BIN, PGBR = os.environ["W"], os.environ["BIN"], os.environ["PGBR"]
have_pgbr = os.environ["HAVE_PGBR"] == "1"
names = open(f"{W}/names").read().split()
src = f"{W}/src/pg_wal"
Q = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

def sh(cmd): subprocess.run(cmd, shell=True, **Q)

def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)

def timed(cmds, dest=None):
    # With dest (a get's %p), the file is removed before each command, untimed, as PostgreSQL
    # does before every restore_command (xlogarchive.c, RestoreArchivedFile: "Make sure there
    # is no existing file named recovername"); replacing a 16 MiB file instead costs every
    # tool ~15 ms that recovery never pays.
    total = 0.0
    for c in cmds:
        if dest and os.path.lexists(dest):
            os.unlink(dest)
        t = time.perf_counter()
        subprocess.run(c, **Q)
        total += time.perf_counter() - t
    return total

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
# get as restore_command runs it; the cp peer is a plain cp, the floor (get need not sync DEST).
get = {
    "wal-archive": lambda n: [BIN, "get", n, f"{W}/out/RECOVERYXLOG", "--repo", f"{W}/repo"],
    "pgbackrest": lambda n: PGBR.split() + ["archive-get", n, f"{W}/out/RECOVERYXLOG"],
    "durable cp": lambda n: ["cp", f"{W}/cp/{n}", f"{W}/out/RECOVERYXLOG"],
}
order = ["wal-archive", "pgbackrest", "durable cp"] if have_pgbr else ["wal-archive", "durable cp"]
res = {t: {"push": [], "get": [], "stored": 0} for t in order}
for r in range(int(os.environ["ROUNDS"])):
    for t in (order if r % 2 == 0 else list(reversed(order))):
        reset(t)
        res[t]["push"].append(timed([push[t](n) for n in names]))
        res[t]["stored"] = du({"wal-archive": f"{W}/repo/wal", "pgbackrest": f"{W}/pgbr/archive", "durable cp": f"{W}/cp"}[t])
        res[t]["get"].append(timed([get[t](n) for n in names], f"{W}/out/RECOVERYXLOG"))

# Peak memory (max RSS, KiB, GNU time) of one push and one get, the largest over a few segments.
def peak(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    return int(out.stderr.strip().splitlines()[-1])
peaks = {}
for t in order:
    if t == "durable cp" or not os.path.exists("/usr/bin/time"):
        continue
    reset(t)
    peaks[t] = {
        "push": max(peak(push[t](n)) for n in names[:4]),
        "get": max(peak(get[t](n)) for n in names[:4]),
    }
gib = {}
if os.path.exists("/usr/bin/time"):
    sh(f"rm -rf {W}/repo && {BIN} init --repo {W}/repo --pgdata {W}/gib >/dev/null")
    seg = f"{W}/gib/pg_wal/000000010000000000000001"
    gib["push"] = peak([BIN, "push", seg, "--repo", f"{W}/repo"])
    gib["get"] = peak([BIN, "get", "000000010000000000000001", f"{W}/out/RECOVERYXLOG", "--repo", f"{W}/repo"])
    sh(f"rm -rf {W}/repo {W}/out/RECOVERYXLOG")
load_after = open("/proc/loadavg").read().split()[:3]

n = len(names)
med = lambda xs: statistics.median(xs)
print(f"wal-archive benchmark: {n} pgbench segments of 16 MiB, one process per segment, median of {os.environ['ROUNDS']} rounds")
print(f"load average (1, 5, 15 min): {os.environ['LOAD_BEFORE']} before, {' '.join(load_after)} after, on {os.cpu_count()} cores")
print(f"{'tool':<12} {'push s':>8} {'ms/seg':>7} {'get s':>8} {'ms/seg':>7} {'stored MiB':>11} {'peak push MiB':>14} {'peak get MiB':>13}")
for t in order:
    p, g = med(res[t]["push"]), med(res[t]["get"])
    pk = peaks.get(t, {"push": 0, "get": 0})
    print(f"{t:<12} {p:8.2f} {1000*p/n:7.1f} {g:8.2f} {1000*g/n:7.1f} {res[t]['stored']/2**20:11.1f} {pk['push']/1024:14.1f} {pk['get']/1024:13.1f}")
if gib:
    print(f"1 GiB segment: wal-archive push peak {gib['push']/1024:.1f} MiB, get peak {gib['get']/1024:.1f} MiB")
wa = res["wal-archive"]
print()
print(f"{'ratio (wal-archive / peer)':<28} {'push':>6} {'get':>6} {'stored':>7}")
for t in order[1:]:
    print(f"{'vs ' + t:<28} {med(wa['push'])/med(res[t]['push']):6.2f} {med(wa['get'])/med(res[t]['get']):6.2f} {wa['stored']/max(1,res[t]['stored']):7.3f}")

# Rows for the combined table (tests/bench/run.sh): measurement, pgdr, peer, peer figure, ratio, goal, met.
rows = []
def row(m, ours, peer, theirs, ratio, goal, limit):
    met = "-" if limit is None else ("yes" if ratio <= limit else "no")
    rows.append([m, ours, peer, theirs, f"{ratio:.2f}x", goal, met])
R = os.environ["ROUNDS"]
ms = lambda x: f"{1000*x/n:.1f} ms/seg"
if "pgbackrest" in res:
    q = res["pgbackrest"]
    row(f"push {n} segments, 1 process each (median of {R})", ms(med(wa["push"])), "pgBackRest zst-1", ms(med(q["push"])), med(wa["push"]) / med(q["push"]), "<= 0.5x", 0.5)
    row(f"get {n} segments, 1 process each (median of {R})", ms(med(wa["get"])), "pgBackRest zst-1", ms(med(q["get"])), med(wa["get"]) / med(q["get"]), "<= 0.5x", 0.5)
    row(f"stored bytes, {n} segments", f"{wa['stored']/2**20:.1f} MiB", "pgBackRest zst-1", f"{q['stored']/2**20:.1f} MiB", wa["stored"] / max(1, q["stored"]), "<= 1.0x", 1.0)
c = res["durable cp"]
row(f"push {n} segments (median of {R})", ms(med(wa["push"])), "durable cp", ms(med(c["push"])), med(wa["push"]) / med(c["push"]), "<= 1.0x", 1.0)
row(f"get {n} segments (median of {R}): the floor", ms(med(wa["get"])), "plain cp", ms(med(c["get"])), med(wa["get"]) / med(c["get"]), "-", None)
for op in ("push", "get"):
    if "wal-archive" in peaks:
        other = "pgbackrest" if "pgbackrest" in peaks else None
        ours = peaks["wal-archive"][op]
        theirs = peaks[other][op] if other else 0
        rows.append([f"peak memory of one {op}, 16 MiB segment (max RSS)", f"{ours/1024:.1f} MiB", "pgBackRest" if other else "-",
                     f"{theirs/1024:.1f} MiB" if other else "-", f"{ours/max(1, theirs):.2f}x" if other else "-",
                     "<= 64 MiB", "yes" if ours <= 64 * 1024 else "no"])
    if op in gib:
        rows.append([f"peak memory of one {op}, 1 GiB segment (max RSS)", f"{gib[op]/1024:.1f} MiB", "-", "-", "-",
                     "<= 64 MiB", "yes" if gib[op] <= 64 * 1024 else "no"])
rows.append(["machine load average (1, 5, 15 min)", f"{os.environ['LOAD_BEFORE']} before", "-", f"{' '.join(load_after)} after", "-", f"{os.cpu_count()} cores", "-"])
with open(f"{W}/rows", "w") as f:
    for r in rows:
        f.write("\t".join(r) + "\n")
PY
while IFS=$'\t' read -r m ours peer theirs ratio goal met; do
  bench_row wal-archive "$m" "$ours" "$peer" "$theirs" "$ratio" "$goal" "$met"
done < "$W/rows"
