#!/usr/bin/env bash
# A real S3 server on loopback: Ceph's RADOS Gateway (radosgw, Ceph 16 from Debian) over a
# one-node Ceph cluster, for tests that hold tidemark's remote repository (#16) against
# an object store we did not write, through the `object_store` crate.
#
#   scripts/radosgw.sh start      a fresh cluster: one mon, one memstore OSD, radosgw
#                                 (beast) on 127.0.0.1:7480; an S3 user with keys
#                                 generated for this start; waits until S3 answers;
#                                 prints the endpoint
#   scripts/radosgw.sh stop       ends exactly the processes `start` recorded (SIGTERM,
#                                 then SIGKILL after a bounded wait); removes the keys
#   scripts/radosgw.sh status     one line per recorded process; exit 0 when all run
#   scripts/radosgw.sh env        `export` lines for object_store's
#                                 AmazonS3Builder::from_env (endpoint, region, keys)
#   scripts/radosgw.sh stop-rgw   ends only radosgw (the cluster and its data stay): an
#                                 S3 server that went away, for fault tests
#   scripts/radosgw.sh start-rgw  starts radosgw again over the same cluster, same keys
#
# Everything lives under target/realdb/radosgw and is wiped at each start: the OSD keeps
# objects in memory (memstore, capped by TIDEMARK_RGW_MEMSTORE_MB), so a restart of
# radosgw alone keeps the data but a restart of the cluster does not. No systemd, no
# cephx (auth none: the cluster listens on 127.0.0.1 only), no mgr (radosgw and the
# OSD do not need one; `ceph -s` then has no usage figures). Pools are size 1.
# The S3 keys are random per start and written only to a 0600 file that `env` reads;
# they never appear in a command line or a log.
#
# Ports (loopback): mon TIDEMARK_CEPH_MON_PORT (3300, msgr2 only), OSD in 6800-6899,
# radosgw TIDEMARK_RGW_ADDR (127.0.0.1:7480). The OSD's memory grows with the data it
# holds (~140 MiB for all three daemons when empty). TIDEMARK_RGW_MEMSTORE_MB (512) is
# the OSD's size: once its periodic check finds it full (a burst overshoots: 64 MiB
# took 120 MB), writes stall rather than fail, so tests keep their data well below it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RD="$ROOT/target/realdb/radosgw"
CONF="$RD/ceph.conf"
MON_PORT="${TIDEMARK_CEPH_MON_PORT:-3300}"
RGW_ADDR="${TIDEMARK_RGW_ADDR:-127.0.0.1:7480}"
MEMSTORE_MB="${TIDEMARK_RGW_MEMSTORE_MB:-512}"
READY_SECS="${TIDEMARK_RGW_READY_SECS:-90}"
# Any name is accepted by radosgw with its default zonegroup; this is object_store's.
REGION="us-east-1"
UID_NAME="tidemark"
ENV_FILE="$RD/s3.env"
PROCS=(mon osd rgw)

die() {
    echo "radosgw.sh: $*" >&2
    exit 1
}

ceph_cmd() {
    # --connect-timeout bounds every admin call; a mon that does not answer is an error.
    timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"
}

# The recorded pid of PROC (mon, osd, rgw), if it still runs that daemon (a reused pid is
# not ours).
proc_pid() {
    local name=$1 p bin
    case "$name" in
    mon) bin=ceph-mon ;;
    osd) bin=ceph-osd ;;
    rgw) bin=radosgw ;;
    esac
    [ -s "$RD/$name.pid" ] || return 1
    p="$(cat "$RD/$name.pid")"
    # argv[0], read whole (no early-closing reader for pipefail to trip on).
    local argv0
    argv0="$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 1p)" || return 1
    [[ "$argv0" == *"$bin" ]] || return 1
    echo "$p"
}

stop_one() {
    local name=$1 p
    if p="$(proc_pid "$name")"; then
        kill -TERM "$p" 2>/dev/null || true
        local deadline=$((SECONDS + 20))
        while [ -d "/proc/$p" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$RD/$name.pid"
}

# Runs a daemon in the foreground of its own session, records its pid.
spawn() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$RD/log/$name.out" 2>&1 &
    echo $! >"$RD/$name.pid"
}

# The tail of every log, then the stop of what started, then the error.
fail() {
    local f
    for f in "$RD"/log/*; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -n 15 "$f" >&2 || true
    done
    cmd_stop
    die "$*"
}

# Fails when PROC's pid is gone (it exited during start).
alive() {
    local name=$1
    kill -0 "$(cat "$RD/$name.pid")" 2>/dev/null || fail "$name exited during start (logs above)"
}

write_config() {
    local fsid=$1
    cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Daemons (radosgw counts as one) ask for a secure mon session by default, which
# needs a cephx session key; without cephx it must be crc.
ms_mon_client_mode = crc
keyring = $RD/keyring
run_dir = $RD/run
admin_socket = $RD/run/\$name.asok
log_file = $RD/log/\$name.log
log_to_stderr = false
err_to_stderr = false
crash_dir = $RD/crash
mon_data = $RD/mon/\$id
osd_data = $RD/osd/\$id
# Commit each map change at once rather than batching for a second: radosgw makes
# its pools one by one at first start, each a map change.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_allow_pool_size_one = true
# A mon stops itself when its disk has under 5 % free; a scratch mon need not.
mon_data_avail_crit = 0
mon_data_avail_warn = 1
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = $((MEMSTORE_MB * 1024 * 1024))
osd_op_num_shards = 2
# The OSD's four ports, below Cassandra's 7000/7199 (scripts/cassandra.sh).
ms_bind_port_min = 6800
ms_bind_port_max = 6899
osd_op_num_threads_per_shard = 1

[client.rgw.0]
rgw_frontends = beast endpoint=$RGW_ADDR
rgw_data = $RD/rgw
rgw_enable_usage_log = false
# Its lifecycle thread sleeps 5 s at a time and holds SIGTERM's shutdown that long;
# no test uses bucket lifecycle rules.
rgw_enable_lc_threads = false
# Deleted and overwritten objects' data is freed by radosgw's garbage collector, by
# default two hours later: in memory (memstore), soon is better.
rgw_gc_obj_min_wait = 10
rgw_gc_processor_period = 10
EOF
}

start_rgw() {
    spawn rgw radosgw -c "$CONF" -n client.rgw.0 -f
    local deadline=$((SECONDS + READY_SECS))
    # Ready when an anonymous GET / answers with S3 XML (ListAllMyBuckets of anonymous).
    while [ $SECONDS -lt $deadline ]; do
        alive rgw
        if curl -s -m 2 "http://$RGW_ADDR/" 2>/dev/null | grep -q "ListAllMyBucketsResult"; then
            return 0
        fi
        sleep 0.2
    done
    fail "radosgw did not answer on $RGW_ADDR within ${READY_SECS}s"
}

cmd_stop() {
    local i
    # Reverse order: the gateway first, the mon last.
    for ((i = ${#PROCS[@]} - 1; i >= 0; i--)); do
        stop_one "${PROCS[$i]}"
    done
    # The keys die with the cluster; their file goes too.
    rm -f "$ENV_FILE"
}

cmd_start() {
    if cmd_status >/dev/null 2>&1; then
        echo "http://$RGW_ADDR"
        return 0
    fi
    local b
    for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl python3; do
        command -v "$b" >/dev/null 2>&1 || die "$b not found (scripts/setup.sh installs Ceph's Debian packages)"
    done
    # A half-started cluster of a previous run is ended first (by its recorded pids).
    cmd_stop
    # Another cluster (another worktree's tests) on the same ports: say so plainly.
    local addr
    for addr in "127.0.0.1:$MON_PORT TIDEMARK_CEPH_MON_PORT" "$RGW_ADDR TIDEMARK_RGW_ADDR"; do
        set -- $addr
        if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then
            die "$1 is in use (another radosgw.sh?); set $2 to another port"
        fi
    done
    rm -rf "$RD"
    mkdir -p "$RD/run" "$RD/log" "$RD/crash" "$RD/mon/a" "$RD/osd/0" "$RD/rgw"
    local t0=$SECONDS fsid
    fsid="$(cat /proc/sys/kernel/random/uuid)"
    write_config "$fsid"

    # The mon: a monmap of one, a keyring for mkfs (cephx is off, mkfs still reads one).
    ceph-authtool --create-keyring "$RD/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$RD/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$RD/monmap" >"$RD/log/mon-mkfs.out" 2>&1 ||
        fail "ceph-mon --mkfs failed"
    spawn mon ceph-mon -c "$CONF" -i a -f
    local deadline=$((SECONDS + READY_SECS))
    until ceph_cmd mon stat >/dev/null 2>&1; do
        alive mon
        [ $SECONDS -lt $deadline ] || fail "the mon did not answer within ${READY_SECS}s"
        sleep 0.2
    done

    # The OSD: an id from the mon, a memstore made by mkfs, then up and in.
    local uuid id
    uuid="$(cat /proc/sys/kernel/random/uuid)"
    id="$(ceph_cmd osd new "$uuid")" || fail "ceph osd new failed"
    [ "$id" = 0 ] || fail "expected osd id 0, the mon gave '$id'"
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$RD/log/osd-mkfs.out" 2>&1 ||
        fail "ceph-osd --mkfs failed"
    spawn osd ceph-osd -c "$CONF" -i 0 -f
    until ceph_cmd osd dump 2>/dev/null | grep -q '^osd\.0 up  *in'; do
        alive osd
        [ $SECONDS -lt $deadline ] || fail "osd.0 was not up and in within ${READY_SECS}s"
        sleep 0.2
    done

    # The gateway, then its user: radosgw-admin generates the keys and its JSON goes
    # straight into the 0600 env file (never to a terminal, a log or an argv).
    start_rgw
    (
        umask 077
        timeout 60 radosgw-admin -c "$CONF" user create --uid="$UID_NAME" \
            --display-name="tidemark tests" 2>"$RD/log/user-create.err" |
            python3 -c '
import json, sys
key = json.load(sys.stdin)["keys"][0]
endpoint, region, out = sys.argv[1:4]
with open(out, "w") as f:
    f.write("export AWS_ENDPOINT=%s\n" % endpoint)
    f.write("export AWS_REGION=%s\n" % region)
    f.write("export AWS_ACCESS_KEY_ID=%s\n" % key["access_key"])
    f.write("export AWS_SECRET_ACCESS_KEY=%s\n" % key["secret_key"])
    f.write("export AWS_ALLOW_HTTP=true\n")
    f.write("export AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false\n")
' "http://$RGW_ADDR" "$REGION" "$ENV_FILE"
    ) || fail "radosgw-admin user create failed"
    echo "radosgw.sh: S3 ready on http://$RGW_ADDR after $((SECONDS - t0))s" >&2
    echo "http://$RGW_ADDR"
}

cmd_status() {
    local name p rc=0
    for name in "${PROCS[@]}"; do
        if p="$(proc_pid "$name")"; then
            echo "$name pid $p running"
        else
            echo "$name not running"
            rc=3
        fi
    done
    return $rc
}

cmd_env() {
    [ -s "$ENV_FILE" ] || die "no $ENV_FILE: run scripts/radosgw.sh start first"
    cat "$ENV_FILE"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
stop-rgw) stop_one rgw ;;
start-rgw)
    proc_pid osd >/dev/null || die "the cluster is not running (scripts/radosgw.sh start)"
    proc_pid rgw >/dev/null || start_rgw
    echo "http://$RGW_ADDR"
    ;;
*) die "usage: radosgw.sh start | stop | status | env | stop-rgw | start-rgw" ;;
esac
