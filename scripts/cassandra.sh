#!/usr/bin/env bash
# Real Apache Cassandra nodes on loopback, for tests that hold tidemark (and the testbed)
# against the real server rather than our own model of it.
#
#   scripts/cassandra.sh start N   N = 1..3 nodes on 127.0.0.1..N (CQL 9042, storage 7000,
#                                  JMX 7199+100*(i-1)); prints the contact points
#   scripts/cassandra.sh stop      ends exactly the JVMs `start` recorded (SIGTERM, then
#                                  SIGKILL after a bounded wait)
#   scripts/cassandra.sh status    one line per recorded node; exit 0 when all run
#   scripts/cassandra.sh kill-node I   crashes node I (SIGKILL; its data stays)
#   scripts/cassandra.sh start-node I  starts node I again on its data and waits until it
#                                  answers CQL and sees its peers
#
# No tarball: the `cassandra-all` artifact and its dependencies come from Maven Central
# (resolved once, the classpath cached under target/realdb/), and each node is one JVM
# running CassandraDaemon with a cassandra.yaml written here. Every start wipes the
# nodes' data: these are scratch clusters for tests, and a fresh ring with fixed tokens
# needs no bootstrap streaming, which keeps start-to-ready short on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${TIDEMARK_CASSANDRA_VERSION:-5.0.9}"
RD="$ROOT/target/realdb"
CDIR="$RD/cassandra"
READY_SECS="${TIDEMARK_CASSANDRA_READY_SECS:-240}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# A machine whose default java is not 17 (a newer JDK beside it) still has a 17 here.
if [ -z "${JAVA_HOME:-}" ] && ! java -version 2>&1 | grep -q 'version "17'; then
    for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/temurin-17-*/bin/java; do
        [ -x "$j" ] && JAVA="$j" && break
    done
fi

die() {
    echo "cassandra.sh: $*" >&2
    exit 1
}

# Java 17 exactly: 5.0 runs on 11 and 17, and 24+ removed System.setSecurityManager.
check_java() {
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Cassandra $VERSION needs JDK 17)"
    local v
    v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [ "$v" = 17 ] || [ "$v" = 11 ] || die "java $v found; Cassandra $VERSION needs JDK 17 (set JAVA_HOME)"
}

# The classpath, resolved by Maven once per version and cached.
classpath() {
    local cpfile="$RD/maven/cassandra-$VERSION.classpath"
    if [ ! -s "$cpfile" ]; then
        command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch cassandra-all $VERSION)"
        mkdir -p "$RD/maven"
        cat >"$RD/maven/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tidemark.realdb</groupId>
  <artifactId>cassandra-node</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
        echo "cassandra.sh: resolving org.apache.cassandra:cassandra-all:$VERSION with Maven (once)" >&2
        if ! mvn -q -B -f "$RD/maven/pom.xml" dependency:build-classpath \
            -Dmdep.outputFile="$cpfile.tmp" >"$RD/maven/mvn.log" 2>&1; then
            local why
            # The first line that says why, without colour codes or the registry's address.
            why="$(grep -m1 -E 'Could not|ERROR' "$RD/maven/mvn.log" | sed -E 's/\x1b\[[0-9;]*m//g; s#\(?https?://[^ ]*\)?##g; s/ -> \[Help 1\]//' | cut -c1-240 || true)"
            rm -f "$cpfile.tmp"
            die "Maven refused cassandra-all $VERSION: ${why:-see $RD/maven/mvn.log}"
        fi
        mv "$cpfile.tmp" "$cpfile"
    fi
    cat "$cpfile"
}

# Murmur3 tokens spread evenly over n nodes, one token each: a fresh ring that is
# balanced without token allocation or bootstrap.
token() {
    local i=$1 n=$2
    python3 -c "print(-2**63 + ($i - 1) * (2**64 // $n))"
}

write_config() {
    local i=$1 n=$2 dir="$CDIR/node$i"
    mkdir -p "$dir/conf" "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" \
        "$dir/cdc_raw" "$dir/logs"
    # Only the keys these nodes need; the 5.0 loader rejects unknown keys, so each key
    # here is one Config field. Small caches and memtables fit a 768 MiB heap.
    # Batch commit log: a write is acknowledged after its commit log entry is synced,
    # so a node crashed with SIGKILL (kill-node) loses no write it acknowledged — with
    # the default periodic sync it may lose up to the period's worth, a loss of the
    # database's own that no backup tool can see on the wire.
    # RackInferringSnitch without the dynamic snitch orders a node itself first among
    # replicas, so a read at ONE through a node-pinned driver reads that node's data
    # (how tests ask what each replica holds); SimpleSnitch would take ring order.
    cat >"$dir/conf/cassandra.yaml" <<EOF
cluster_name: tidemark-realdb
num_tokens: 1
initial_token: $(token "$i" "$n")
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: RackInferringSnitch
dynamic_snitch: false
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:7000"
listen_address: 127.0.0.$i
rpc_address: 127.0.0.$i
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
saved_caches_directory: $dir/saved_caches
hints_directory: $dir/hints
cdc_raw_directory: $dir/cdc_raw
commitlog_sync: batch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
counter_cache_size: 8MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
materialized_views_enabled: false
sasi_indexes_enabled: false
user_defined_functions_enabled: false
EOF
    # Logs at INFO to the node's stdout file: without a config logback logs DEBUG.
    cat >"$dir/conf/logback.xml" <<'EOF'
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="OUT"/></root>
</configuration>
EOF
}

# JPMS openings Cassandra 5.0 needs on JDK 17 (it reaches into JDK internals for
# off-heap memory, direct buffers, JMX and class loading).
jpms_flags() {
    local e
    for e in java.base/jdk.internal.misc java.base/jdk.internal.ref java.base/sun.nio.ch \
        java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry \
        java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref \
        jdk.unsupported/sun.misc; do
        echo "--add-exports=$e=ALL-UNNAMED"
    done
    for e in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
        java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
        java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal \
        java.base/sun.nio.ch java.base/java.io java.base/java.nio java.base/java.util \
        java.base/java.util.concurrent java.base/java.util.concurrent.atomic java.base/java.lang \
        java.base/java.math java.base/java.lang.reflect java.base/java.net; do
        echo "--add-opens=$e=ALL-UNNAMED"
    done
}

launch() {
    local i=$1 cp=$2 dir="$CDIR/node$i" jamm
    # No `grep -m1`: its early exit can kill tr with SIGPIPE, which pipefail reports.
    jamm="$(tr ':' '\n' <<<"$cp" | grep '/jamm-[0-9.]*\.jar$')" || die "no jamm jar in the classpath"
    jamm="${jamm%%$'\n'*}"
    local -a flags
    mapfile -t flags < <(jpms_flags)
    # setsid: the node outlives the shell that started it and gets no terminal signals.
    setsid "$JAVA" -Xms768m -Xmx768m -Xss512k -XX:+UseG1GC -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
        -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true \
        -Dio.netty.tryReflectionSetAccessible=true \
        "${flags[@]}" \
        "-javaagent:$jamm" \
        "-Dcassandra.config=file://$dir/conf/cassandra.yaml" \
        "-Dlogback.configurationFile=file://$dir/conf/logback.xml" \
        "-Dcassandra.storagedir=$dir" \
        "-Dcassandra.logdir=$dir/logs" \
        -Dcassandra-foreground=yes \
        "-Dcassandra.jmx.local.port=$((7199 + 100 * (i - 1)))" \
        -Dcassandra.skip_wait_for_gossip_to_settle=0 \
        -Dcassandra.superuser_setup_delay_ms=0 \
        -cp "$cp" org.apache.cassandra.service.CassandraDaemon \
        </dev/null >"$dir/logs/stdout.log" 2>&1 &
    echo $! >"$dir/pid"
}

# A recorded pid that still runs CassandraDaemon (a reused pid is not ours).
node_pid() {
    local f="$CDIR/node$1/pid" p
    [ -s "$f" ] || return 1
    p="$(cat "$f")"
    [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q CassandraDaemon || return 1
    echo "$p"
}

recorded_nodes() {
    local d
    for d in "$CDIR"/node*; do
        [ -d "$d" ] && echo "${d##*node}"
    done | sort -n
}

# Asks node i over CQL (the real driver, pinned to that node): exit 0 once it answers
# and lists `want` peers in system.peers.
cql_ready() {
    local i=$1 want=$2
    python3 - "127.0.0.$i" "$want" <<'PY' >/dev/null 2>&1
import sys
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import WhiteListRoundRobinPolicy
host, want = sys.argv[1], int(sys.argv[2])
prof = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=5)
c = Cluster([host], execution_profiles={EXEC_PROFILE_DEFAULT: prof}, connect_timeout=3,
            control_connection_timeout=3, protocol_version=4)
try:
    s = c.connect()
    peers = list(s.execute("SELECT peer FROM system.peers"))
    sys.exit(0 if len(peers) >= want else 1)
finally:
    c.shutdown()
PY
}

# Waits (bounded) until node i answers CQL and sees `want` peers; on failure prints the
# node's log tail.
wait_ready() {
    local i=$1 want=$2 deadline=$((SECONDS + READY_SECS)) pid
    pid="$(cat "$CDIR/node$i/pid")"
    while [ $SECONDS -lt $deadline ]; do
        # The pid alone: right after launch it may not have exec'd java yet.
        [ -d "/proc/$pid" ] || {
            tail -n 25 "$CDIR/node$i/logs/stdout.log" >&2 || true
            echo "cassandra.sh: node $i exited during start" >&2
            return 1
        }
        # Cheap port probe first: the driver import costs a second of CPU.
        if (exec 3<>"/dev/tcp/127.0.0.$i/9042") 2>/dev/null && cql_ready "$i" "$want"; then
            return 0
        fi
        sleep 2
    done
    tail -n 25 "$CDIR/node$i/logs/stdout.log" >&2 || true
    return 1
}

stop_nodes() {
    local i p pids=()
    for i in $(recorded_nodes); do
        if p="$(node_pid "$i")"; then
            kill -TERM "$p" 2>/dev/null || true
            pids+=("$p")
        fi
    done
    local deadline=$((SECONDS + 30))
    for p in "${pids[@]}"; do
        while [ -d "/proc/$p" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
        [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
    done
    for i in $(recorded_nodes); do rm -f "$CDIR/node$i/pid"; done
}

contact_points() {
    local n=$1 i out=""
    for i in $(seq 1 "$n"); do out="${out:+$out,}127.0.0.$i"; done
    echo "$out"
}

cmd_start() {
    local n="${1:-}"
    [[ "$n" =~ ^[1-3]$ ]] || die "usage: cassandra.sh start N (N = 1..3)"
    # Idempotent: the same cluster already up is a success.
    local running=0 i
    for i in $(recorded_nodes); do node_pid "$i" >/dev/null && running=$((running + 1)); done
    if [ "$running" -gt 0 ]; then
        if [ "$running" = "$n" ] && [ "$(recorded_nodes | wc -l)" = "$n" ]; then
            contact_points "$n"
            return 0
        fi
        die "$running node(s) of another cluster already run; run 'cassandra.sh stop' first"
    fi
    check_java
    python3 -c 'import cassandra' 2>/dev/null || die "python cassandra-driver missing (run scripts/setup.sh)"
    local cp
    cp="$(classpath)" || exit 1
    rm -rf "$CDIR"
    # Nothing left running if any step fails from here on.
    trap 'stop_nodes; die "start failed"' ERR
    local t0=$SECONDS
    for i in $(seq 1 "$n"); do
        write_config "$i" "$n"
        launch "$i" "$cp"
        # One after another, seed first: Cassandra refuses concurrent joins.
        wait_ready "$i" 0 || {
            trap - ERR
            stop_nodes
            die "node $i (127.0.0.$i) did not answer CQL within ${READY_SECS}s; log: $CDIR/node$i/logs/stdout.log"
        }
        echo "cassandra.sh: node $i up after $((SECONDS - t0))s" >&2
    done
    for i in $(seq 1 "$n"); do
        wait_ready "$i" $((n - 1)) || {
            trap - ERR
            stop_nodes
            die "node $i does not see its $((n - 1)) peers in system.peers within ${READY_SECS}s"
        }
    done
    trap - ERR
    echo "cassandra.sh: $n node(s) ready after $((SECONDS - t0))s" >&2
    contact_points "$n"
}

# The node number argument of kill-node/start-node: a node `start` recorded.
node_arg() {
    local i="${1:-}"
    [[ "$i" =~ ^[1-3]$ ]] && [ -f "$CDIR/node$i/conf/cassandra.yaml" ] ||
        die "usage: cassandra.sh kill-node|start-node I (I = a node 'start' created)"
    echo "$i"
}

# A crash: SIGKILL, no drain; waits (bounded) until the process is gone.
cmd_kill_node() {
    local i p
    i="$(node_arg "${1:-}")"
    if p="$(node_pid "$i")"; then
        kill -KILL "$p" 2>/dev/null || true
        local deadline=$((SECONDS + 30))
        while [ -d "/proc/$p" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        [ -d "/proc/$p" ] && die "node $i (pid $p) still runs after SIGKILL"
    fi
    rm -f "$CDIR/node$i/pid"
    echo "cassandra.sh: node $i killed" >&2
}

# Starts a killed node again on its own data (commit log replayed) and waits until
# it answers CQL and lists every other node as a peer.
cmd_start_node() {
    local i n cp t0=$SECONDS
    i="$(node_arg "${1:-}")"
    if node_pid "$i" >/dev/null; then
        echo "cassandra.sh: node $i already runs" >&2
        return 0
    fi
    n="$(recorded_nodes | wc -l)"
    cp="$(classpath)" || exit 1
    # The crashed run's log is kept beside the new one.
    mv -f "$CDIR/node$i/logs/stdout.log" "$CDIR/node$i/logs/stdout.before-restart.log" 2>/dev/null || true
    launch "$i" "$cp"
    wait_ready "$i" $((n - 1)) || die "node $i did not come back within ${READY_SECS}s; log: $CDIR/node$i/logs/stdout.log"
    echo "cassandra.sh: node $i up again after $((SECONDS - t0))s" >&2
}

cmd_status() {
    local i p all=0 any=0
    for i in $(recorded_nodes); do
        any=1
        if p="$(node_pid "$i")"; then
            echo "node $i 127.0.0.$i:9042 pid $p running"
        else
            echo "node $i 127.0.0.$i:9042 not running"
            all=1
        fi
    done
    [ "$any" = 1 ] || {
        echo "no nodes recorded"
        return 3
    }
    return "$all"
}

case "${1:-}" in
start) cmd_start "${2:-}" ;;
stop) stop_nodes ;;
status) cmd_status ;;
kill-node) cmd_kill_node "${2:-}" ;;
start-node) cmd_start_node "${2:-}" ;;
*) die "usage: cassandra.sh start N | stop | status | kill-node I | start-node I" ;;
esac
