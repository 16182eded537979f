#!/usr/bin/env bash
# Local S3 server (Ceph radosgw, single node) for bench/many_dbs at N=100,000.
#
# moto and s3rver LIST in O(objects in bucket), which is unusable once one
# bucket holds the ~500,000-1,000,000 objects of 100,000 databases. radosgw
# keeps the bucket index in sorted omap shards, so a LIST by prefix costs
# O(shards * log n), not O(objects).
#
# Everything lives under DIR, binds 127.0.0.1 only, and runs without systemd:
#   one ceph-mon, one ceph-osd, radosgw (beast frontend). No mgr (not needed
#   for I/O; `ceph -s` shows "no active mgr" and 0 pools, which is harmless).
# The OSD is BlueStore on a sparse 64 GiB file DIR/block.img (memory bounded
# by osd memory target, 3 GiB; RGW_OSD_MEMORY=bytes to change), or with
# RGW_OSD_STORE=memstore everything in RAM (faster, but ~20 KB of OSD RSS per
# 4 KiB object: ~10 GB at 500,000 objects, too much for 1,000,000).
# Pool size 1, auth "none" between daemons (msgr2 "crc" mode). S3: key
# AKIDBENCH / secret bench-secret, region us-east-1, path-style, bucket
# "many-dbs" with 16 index shards and dynamic resharding off.
#
# Usage:
#   bash bench/radosgw.sh start DIR PORT   # fresh cluster in DIR, S3 on 127.0.0.1:PORT
#   bash bench/radosgw.sh stop DIR         # kill the daemons (DIR is kept)
# Ceph's own ports: mon on PORT+1 (msgr v2), osd on PORT+2..PORT+40.
# Start takes ~20 s. CLI: CEPH_CONF=DIR/ceph.conf ceph -s / radosgw-admin -n client.rgw.a ...
#
# Needs (Debian 12, Ceph 16.2.15; python3 boto3 for the bucket creation):
#   apt-get install -y radosgw ceph-mon ceph-osd ceph-common
#
# Measured on this machine (2 cores shared by server and client, 4 KiB objects,
# keys run/100000/tNNNNNN/generations/<16hex>/{snapshots,wal}/..., 5 per db):
#   PUT, 8 concurrent keep-alive clients (python http.client, SigV2):
#     bluestore ~470 PUT/s (500,000 objects in 1062 s),
#     memstore  ~785 PUT/s (500,000 objects in 637 s).
#     Server CPU ~2.2 ms/PUT (bluestore), ~1.5 ms/PUT (memstore): CPU-bound.
#   boto3, 8 threads (client-bound, GIL): PUT 210-360/s, HEAD 320-480/s,
#     GET 330-420/s, LIST(prefix) 175-400/s, p50 15-40 ms.
#   At 500,000 objects in the bucket, single client, idle server:
#     LIST prefix run/100000/t000123/generations/ (5 keys): bluestore 7.4 ms p50,
#       12.4 ms p90 (memstore 4.1 / 5.4 ms); 100-db delimiter LIST 13 ms;
#     LIST run/100000/.replite-packs/ (empty): 5.3 ms p50 (memstore 2.8 ms);
#     a LIST returning 1,000 keys: ~180 ms (RGW merges the 16 index shards).
#     HEAD / GET 4 KiB: ~2.5-3 ms p50.
#   RSS: ceph-mon ~35 MB, radosgw ~80 MB, ceph-osd 3.0 GB (bluestore, = memory target) or
#   10.2 GB (memstore) at 500,000 objects. Disk: 6.4 GB used in block.img.
#   (Another job shared the 2 cores at times; numbers are +-25%.)
#
# Conditional PUT (replite leases/manifests), Ceph 16.2.15 radosgw:
#   If-None-Match: * -> 412 PreconditionFailed on an existing key, 200 if absent.
#   If-Match: ETAG works ONLY with the ETag unquoted (abc...); the quoted form
#   that HEAD/PUT return ("abc...") always gives 412 (known RGW quirk), so a
#   client forwarding the ETag header verbatim must strip the quotes for RGW.
#   Both are atomic: 8 racing writers -> exactly one 200 (40/40 rounds each).
set -euo pipefail

die() { echo "radosgw.sh: $*" >&2; exit 1; }

cmd=${1:-}
DIR=${2:-}
[[ -n "$cmd" && -n "$DIR" ]] || die "usage: $0 start DIR PORT | stop DIR"

stop_all() {
  local f
  for f in "$DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    local pid; pid=$(cat "$f" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  done
  # give them a moment, then force
  for _ in $(seq 1 50); do
    local alive=0
    for f in "$DIR"/run/*.pid; do
      [[ -e "$f" ]] || continue
      local pid; pid=$(cat "$f" 2>/dev/null || true)
      if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [[ $alive = 0 ]] && break
    sleep 0.1
  done
  for f in "$DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    local pid; pid=$(cat "$f" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
}

case "$cmd" in
  stop)
    [[ -d "$DIR" ]] || die "no such dir: $DIR"
    DIR=$(cd "$DIR" && pwd)
    stop_all
    echo "stopped daemons in $DIR"
    exit 0 ;;
  start) ;;
  *) die "usage: $0 start DIR PORT | stop DIR" ;;
esac

PORT=${3:-}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "usage: $0 start DIR PORT"
MONPORT=$((PORT + 1))
OSDPORT_MIN=$((PORT + 2))
OSDPORT_MAX=$((PORT + 40))

missing=()
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool uuidgen curl python3; do
  command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if (( ${#missing[@]} )); then
  echo "radosgw.sh: missing: ${missing[*]}" >&2
  echo "  apt-get update && apt-get install -y radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl python3-boto3" >&2
  exit 1
fi
python3 -c 'import boto3' 2>/dev/null || die "python3 boto3 missing (apt-get install -y python3-boto3)"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
stop_all  # in case a previous cluster in DIR is still up
rm -rf "$DIR"/{mon,osd0,rgw,log,run,ceph.conf,block.img}
mkdir -p "$DIR"/{mon,osd0,rgw,log,run}
trap 'stop_all' EXIT  # a failed start leaves nothing running; cleared on success

FSID=$(uuidgen)
CONF="$DIR/ceph.conf"
STORE=${RGW_OSD_STORE:-bluestore}
case "$STORE" in
  bluestore)
    # BlueStore on a sparse file in DIR: memory stays bounded (osd memory target).
    OSD_STORE_CONF="osd objectstore = bluestore
bluestore block path = $DIR/block.img
bluestore block create = true
bluestore block size = 68719476736
bluestore fsck on mount = false
bdev enable discard = false
osd memory target = ${RGW_OSD_MEMORY:-3221225472}" ;;
  memstore)
    # Everything in RAM: ~20 KB of OSD RSS per 4 KiB S3 object (head object
    # xattrs + bucket-index omap + pg log), i.e. ~10 GB at 500,000 objects.
    # page set: copy data into 4 KiB pages instead of pinning messenger buffers.
    OSD_STORE_CONF="osd objectstore = memstore
memstore device bytes = 34359738368
memstore page set = true
memstore page size = 4096" ;;
  *) die "RGW_OSD_STORE must be bluestore or memstore" ;;
esac
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MONPORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $OSDPORT_MIN
ms bind port max = $OSDPORT_MAX
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
# auth none cannot do msgr2 'secure' mode, and daemons default to it for the mon link
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
debug ms = 0
debug osd = 0
debug rgw = 0
debug mon = 0
debug paxos = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 16
osd pool default pgp num = 16
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 0

[mon.a]
mon data = $DIR/mon

[osd.0]
osd data = $DIR/osd0
$OSD_STORE_CONF
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
rgw override bucket index max shards = 16
rgw dynamic resharding = false
rgw thread pool size = 256
rgw enable usage log = false
rgw enable ops log = false
rgw cache lru size = 100000
EOF

export CEPH_CONF="$CONF"

# --- monitor -----------------------------------------------------------------
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MONPORT]" \
  "$DIR/run/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/run/monmap" >"$DIR/log/mkfs-mon.log" 2>&1 \
  || { cat "$DIR/log/mkfs-mon.log" >&2; die "ceph-mon --mkfs failed"; }
ceph-mon -c "$CONF" -i a || die "ceph-mon failed to start (see $DIR/log/mon.a.log)"

for i in $(seq 1 60); do
  ceph -c "$CONF" --connect-timeout 2 mon stat >/dev/null 2>&1 && break
  sleep 0.5
  [[ $i = 60 ]] && die "monitor not answering (see $DIR/log/mon.a.log)"
done

# --- osd ---------------------------------------------------------------------
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
[[ "$OSD_ID" = 0 ]] || die "unexpected osd id $OSD_ID"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$DIR/log/mkfs-osd.log" 2>&1 \
  || { cat "$DIR/log/mkfs-osd.log" >&2; die "ceph-osd --mkfs failed"; }
ceph-osd -c "$CONF" -i 0 || die "ceph-osd failed to start (see $DIR/log/osd.0.log)"

for i in $(seq 1 120); do
  if ceph -c "$CONF" osd dump 2>/dev/null | grep -q '^osd.0 up'; then break; fi
  sleep 0.5
  [[ $i = 120 ]] && die "osd.0 not up (see $DIR/log/osd.0.log)"
done

# --- radosgw -----------------------------------------------------------------
radosgw -c "$CONF" -n client.rgw.a || die "radosgw failed to start (see $DIR/log/client.rgw.a.log)"

for i in $(seq 1 240); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
  [[ "$code" =~ ^[2-4][0-9][0-9]$ ]] && break
  sleep 0.5
  [[ $i = 240 ]] && die "radosgw not answering on 127.0.0.1:$PORT (see $DIR/log/client.rgw.a.log)"
done

radosgw-admin -c "$CONF" -n client.rgw.a user create --uid=bench --display-name=bench \
  --access-key=AKIDBENCH --secret-key=bench-secret >"$DIR/log/user-create.log" 2>&1 \
  || { cat "$DIR/log/user-create.log" >&2; die "radosgw-admin user create failed"; }

python3 - "$PORT" <<'PY'
import sys, time, boto3
from botocore.config import Config
port = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                  aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret",
                  region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
for i in range(60):
    try:
        s3.create_bucket(Bucket="many-dbs")
        break
    except s3.exceptions.BucketAlreadyOwnedByYou:
        break
    except Exception as e:  # user metadata may take a moment to propagate
        if i == 59:
            raise
        time.sleep(0.5)
s3.put_object(Bucket="many-dbs", Key="probe", Body=b"ok")
assert s3.get_object(Bucket="many-dbs", Key="probe")["Body"].read() == b"ok"
s3.delete_object(Bucket="many-dbs", Key="probe")
PY

trap - EXIT
cat <<EOF
radosgw up: S3 endpoint http://127.0.0.1:$PORT (path-style), region us-east-1
  access key AKIDBENCH, secret bench-secret, bucket many-dbs
  ceph: CEPH_CONF=$CONF ceph -s ; logs in $DIR/log ; stop: bash $0 stop $DIR
EOF
