# Sourced by demo.sh after the point-in-time clone: the second region.
#
# A local S3-compatible server (moto) stands in for the other region's object store. The
# repository there is encrypted with age: the WAL archive is copied into it, the snapshot is
# stored in it as an image, and then a new instance comes up at the moment T from that
# repository alone, in a directory that shares nothing with the source (no pool, no snapshot,
# no local archive), with the rows of batches 1 and 2.

command -v age-keygen >/dev/null || { echo "demo: age-keygen is missing (run make deps)" >&2; exit 1; }
command -v aws >/dev/null || { echo "demo: the aws CLI is missing (run make deps)" >&2; exit 1; }
MOTO=$(command -v moto_server || true)
S3PORT=$(free_port)
if [ -n "$MOTO" ]; then
  "$MOTO" -H 127.0.0.1 -p "$S3PORT" >"$WORK/moto.log" 2>&1 &
else
  python3 -m moto.server -H 127.0.0.1 -p "$S3PORT" >"$WORK/moto.log" 2>&1 &
fi
MOTO_PID=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3PORT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret
for _ in $(seq 100); do
  aws s3 ls >/dev/null 2>&1 && break
  sleep 0.2
done
aws s3 mb s3://dr-region >/dev/null
DR=s3://dr-region/pg
say "second region: an S3-compatible store on 127.0.0.1:$S3PORT (moto), bucket dr-region"

# The identity is the DR site's secret; the primary's site needs only the recipient.
age-keygen -o "$WORK/dr.key" 2>/dev/null
chmod 0600 "$WORK/dr.key"
if [ "$(id -u)" = 0 ]; then chown postgres: "$WORK/dr.key"; fi
RECIPIENT=$(age-keygen -y "$WORK/dr.key")
wal-archive init --repo "$DR" --pgdata "$PRIMARY" --encrypt-to "$RECIPIENT" >/dev/null
say "wal-archive init --repo $DR --encrypt-to ${RECIPIENT:0:16}…: every object an age file"

COPIED=$(wal-archive copy --repo "$REPO" --to "$DR" --identity "$WORK/dr.key")
say "wal-archive copy --to $DR: $(json copied <<<"$COPIED") objects copied, each verified as read and as stored"
IMAGE=$(snap-take - --to "$DR" <<<"$SNAP")
say "snap-take - --to $DR: image $(json image <<<"$IMAGE"), $(json files <<<"$IMAGE") files, $(json bytes <<<"$IMAGE") bytes in $(json objects <<<"$IMAGE") pieces ($(json stored_bytes <<<"$IMAGE") stored)"

# The first region is gone: the standby and its snapshots (the pool, or the copy backend's
# store), and the local repository. Nothing local is used from here on.
as_pg "$PGBIN/pg_ctl" -D "$STANDBY" -m fast -w stop >/dev/null
if [ -n "$POOL" ]; then
  for _ in $(seq 20); do zpool destroy -f "$POOL" >/dev/null 2>&1 && { rmdir "/$POOL" 2>/dev/null; POOL=""; break; }; sleep 0.5; done
else
  rm -rf "$STANDBY" "$(dirname "$STANDBY")/.pgdr-snapshots"
fi
rm -rf "$REPO"
say "the first region is gone: standby, its snapshots and the local repository $REPO removed"
DRDIR=$WORK/dr-instance
DRCLONE=$(PGDR_IDENTITY="$WORK/dr.key" snap-clone --repo "$DR" --before "$T" \
  --recovery-target-time "$T" --target "$DRDIR" --name dr --start --wait 180)
DRPORT=$(json port <<<"$DRCLONE")
say "snap-clone --repo $DR --target $DRDIR: port $DRPORT, recovery $(json recovery.state <<<"$DRCLONE") in $(json seconds <<<"$DRCLONE") s"
on_dr=$(counts "$DRPORT")
say "rows in the second region at T: $on_dr"
snap-clone --destroy dr >/dev/null
say "snap-clone --destroy dr: the second region's instance stopped and removed"
if [ "$on_dr" != "1 1000;2 1000;" ]; then
  verdict="FAIL: expected batches 1 and 2 in the second region, got '$on_dr'"
  exit 1
fi
