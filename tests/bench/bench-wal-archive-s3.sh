#!/usr/bin/env bash
# wal-archive on S3 (issue 14) against pgBackRest repo1-type=s3 (compress-type=zst,
# compress-level=1) on the same local S3 server (moto_server over TLS with a CA made here:
# pgBackRest talks to S3 over TLS only), one process per segment as PostgreSQL calls them,
# median of alternating rounds (pgBackRest gets a fresh repo1-path, wal-archive a fresh prefix,
# per round); the floor: curl sending and fetching the same stored objects, one process and
# one request each; peak memory (max RSS) of one push and one get; and
# `wal-archive copy` of a 1 GiB local repository (64 segments stored uncompressed) into S3
# against `aws s3 sync` of the same directory.
# Needs: cargo build --release; PostgreSQL server binaries; moto_server, aws CLI, pgbackrest,
# socat, openssl, GNU time (make deps WITH_BENCH=1). Knobs: BENCH_SEGMENTS (64), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/wal-archive
[ -x "$BIN" ] || { echo "bench-wal-archive-s3: build first: cargo build --release"; exit 1; }
command -v moto_server >/dev/null || { echo "bench-wal-archive-s3: moto_server missing (make deps)"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
N=${BENCH_SEGMENTS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
W=$(mktemp -d /tmp/pgdr-bench-s3.XXXXXX)
chmod 755 "$W"
[ "$(id -u)" != 0 ] || chown postgres: "$W"
cleanup() {
  bench_as_pg "$PGBIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true
  bench_s3_stop
  rm -rf "$W"
}
trap cleanup EXIT

# Real pgbench segments, each run's last one switched out.
bench_pgbench_wal "$W" "$N" 10 2 3 switch

bench_s3_start "$W"

bench_s3_conf | bench_pgbench_wal_pgbr "$W"

export W BIN ROUNDS
printf '%s\n' "${SEGS[@]}" >"$W/names"
python3 - <<'PY'
import os, subprocess, statistics, time
W, BIN = os.environ["W"], os.environ["BIN"]
names = open(f"{W}/names").read().split()
src = f"{W}/src/pg_wal"
Q = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
PGBR = ["pgbackrest", f"--config={W}/pgbackrest.conf", "--stanza=bench"]

def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode()[-300:]}")

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
        run(c)
        total += time.perf_counter() - t
    return total

def setup(tool, r):
    if tool == "wal-archive":
        run([BIN, "init", "--repo", f"s3://bench/wa{r}", "--pgdata", f"{W}/data"])
    else:
        run(PGBR + [f"--repo1-path=/pgbr{r}", "stanza-create"])

push = {
    "wal-archive": lambda n, r: [BIN, "push", f"{src}/{n}", "--repo", f"s3://bench/wa{r}"],
    "pgbackrest": lambda n, r: PGBR + [f"--repo1-path=/pgbr{r}", "archive-push", f"{src}/{n}"],
}
get = {
    "wal-archive": lambda n, r: [BIN, "get", n, f"{W}/out/RECOVERYXLOG", "--repo", f"s3://bench/wa{r}"],
    "pgbackrest": lambda n, r: PGBR + [f"--repo1-path=/pgbr{r}", "archive-get", n, f"{W}/out/RECOVERYXLOG"],
}
os.makedirs(f"{W}/out", exist_ok=True)
order = ["wal-archive", "pgbackrest"]
res = {t: {"push": [], "get": []} for t in order}
R = int(os.environ["ROUNDS"])
for r in range(R):
    for t in (order if r % 2 == 0 else list(reversed(order))):
        setup(t, r)
        res[t]["push"].append(timed([push[t](n, r) for n in names]))
        res[t]["get"].append(timed([get[t](n, r) for n in names], f"{W}/out/RECOVERYXLOG"))

# The floor: the same stored objects (round 0's, as pgdr stored them) sent and fetched by
# curl, one process and one request each, with no tool around them: what any client pays this
# server per segment.
import glob
run(["aws", "s3", "sync", "--only-show-errors", "s3://bench/wa0/wal", f"{W}/stored"])
stored = sorted(glob.glob(f"{W}/stored/**/*", recursive=True))
stored = [p for p in stored if os.path.isfile(p)][: len(names)]
ep = os.environ["AWS_ENDPOINT_URL"]
CURL = ["curl", "-sSf", "--cacert", os.environ["AWS_CA_BUNDLE"], "--aws-sigv4", "aws:amz:us-east-1:s3",
        "--user", f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}"]
floor = {"push": [], "get": []}
for r in range(R):
    keys = [f"{ep}/bench/floor{r}/{i}" for i in range(len(stored))]
    floor["push"].append(timed([CURL + ["-T", p, k] for p, k in zip(stored, keys)]))
    floor["get"].append(timed([CURL + ["-o", f"{W}/out/floor", k] for k in keys], f"{W}/out/floor"))

def peak(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{cmd}: {out.stderr[-300:]}")
    return int(out.stderr.strip().splitlines()[-1])
setup("wal-archive", "peak")
pk_push = max(peak(push["wal-archive"](n, "peak")) for n in names[:4])
pk_get = max(peak(get["wal-archive"](n, "peak")) for n in names[:4])
setup("pgbackrest", "peak")
pb_push = max(peak(push["pgbackrest"](n, "peak")) for n in names[:4])
pb_get = max(peak(get["pgbackrest"](n, "peak")) for n in names[:4])

# copy: a local repository of 64 segments stored uncompressed (1 GiB) into S3, against aws s3
# sync of the same directory; alternating, median.
local = f"{W}/local"
run([BIN, "init", "--repo", local, "--compress", "none"])
for n in names:
    run([BIN, "push", f"{src}/{n}", "--repo", local])
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{local}/wal") for f in fs)
cp = {"copy": [], "sync": []}
for r in range(R):
    for t in (["copy", "sync"] if r % 2 == 0 else ["sync", "copy"]):
        if t == "copy":
            run([BIN, "init", "--repo", f"s3://bench/copy{r}"])
            cp[t].append(timed([[BIN, "copy", "--repo", local, "--to", f"s3://bench/copy{r}", "--parallel", "4"]]))
        else:
            cp[t].append(timed([["aws", "s3", "sync", "--only-show-errors", local, f"s3://bench/sync{r}"]]))
run([BIN, "init", "--repo", "s3://bench/copy-peak"])
pk_copy = peak([BIN, "copy", "--repo", local, "--to", "s3://bench/copy-peak", "--parallel", "4"])

med = statistics.median
n = len(names)
print(f"wal-archive on S3: {n} pgbench segments, one process each, moto_server over TLS, median of {R} rounds")
print(f"{'tool':<12} {'push s':>8} {'ms/seg':>7} {'get s':>8} {'ms/seg':>7} {'peak push MiB':>14} {'peak get MiB':>13}")
for t, pp, pg in (("wal-archive", pk_push, pk_get), ("pgbackrest", pb_push, pb_get)):
    p, g = med(res[t]["push"]), med(res[t]["get"])
    print(f"{t:<12} {p:8.2f} {1000*p/n:7.1f} {g:8.2f} {1000*g/n:7.1f} {pp/1024:14.1f} {pg/1024:13.1f}")
c, s = med(cp["copy"]), med(cp["sync"])
print(f"{'floor (curl)':<12} {med(floor['push']):8.2f} {1000*med(floor['push'])/n:7.1f} {med(floor['get']):8.2f} {1000*med(floor['get'])/n:7.1f}")
print(f"copy {size/2**30:.2f} GiB: wal-archive copy {c:.2f} s ({size/2**20/c:.0f} MiB/s, peak {pk_copy/1024:.1f} MiB), aws s3 sync {s:.2f} s ({size/2**20/s:.0f} MiB/s)")
wa, pb = res["wal-archive"], res["pgbackrest"]
rows = []
for m, a, b in (("push", med(wa["push"]), med(pb["push"])), ("get", med(wa["get"]), med(pb["get"]))):
    rows.append([f"S3 {m} {n} segments, 1 process each (median of {R})", f"{1000*a/n:.1f} ms/seg", "pgBackRest s3 zst-1",
                 f"{1000*b/n:.1f} ms/seg", f"{a/b:.2f}x", "<= 0.5x", "yes" if a / b <= 0.5 else "no"])
for m in ("push", "get"):
    f, b = med(floor[m]), med(pb[m])
    rows.append([f"floor of S3 {m}: curl, 1 request per stored segment", f"{1000*f/n:.1f} ms/seg", "pgBackRest s3 zst-1",
                 f"{1000*b/n:.1f} ms/seg", f"{f/b:.2f}x", "-", "-"])
for m, a, b in (("push", pk_push, pb_push), ("get", pk_get, pb_get)):
    rows.append([f"S3 peak memory of one {m} (max RSS)", f"{a/1024:.1f} MiB", "pgBackRest s3 zst-1", f"{b/1024:.1f} MiB",
                 f"{a/max(1,b):.2f}x", "<= 64 MiB", "yes" if a <= 64 * 1024 else "no"])
rows.append([f"copy {size/2**30:.2f} GiB of WAL to S3 (median of {R})", f"{c:.2f} s", "aws s3 sync", f"{s:.2f} s",
             f"{c/s:.2f}x", "-", "-"])
with open(f"{W}/rows", "w") as f:
    for r in rows:
        f.write("\t".join(r) + "\n")
PY
while IFS=$'\t' read -r m ours peer theirs ratio goal met; do
  bench_row wal-archive-s3 "$m" "$ours" "$peer" "$theirs" "$ratio" "$goal" "$met"
done < "$W/rows"
