#!/usr/bin/env bash
# fake-gcs-server (github.com/fsouza/fake-gcs-server), a Google Cloud Storage emulator, on
# loopback: for tests that hold tidemark's remote repository (#16) on `gs://` against a
# GCS server we did not write, through the `object_store` crate.
#
#   scripts/fake_gcs.sh start    builds it once (`go install`, Go module proxy, under
#                                target/realdb/fake-gcs), starts it on TIDEMARK_FAKE_GCS_ADDR
#                                (127.0.0.1:4443), plain HTTP, objects in memory; waits
#                                until it answers; creates the bucket
#                                TIDEMARK_FAKE_GCS_BUCKET (tidemark); prints the URL
#   scripts/fake_gcs.sh stop     ends exactly the process `start` recorded (SIGTERM, then
#                                SIGKILL after a bounded wait)
#   scripts/fake_gcs.sh status   exit 0 when it runs
#   scripts/fake_gcs.sh env      `export` lines for object_store's
#                                GoogleCloudStorageBuilder::from_env
#
# object_store 0.12 reaches an emulator through a service account key
# (GOOGLE_SERVICE_ACCOUNT_KEY, a JSON string) that carries `"gcs_base_url"` and
# `"disable_oauth": true` (empty bearer tokens); no key material at all: the emulator
# checks no credentials. The bucket is made with the JSON API (`POST /storage/v1/b`).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${TIDEMARK_FAKE_GCS_VERSION:-v1.56.1}"
RD="$ROOT/target/realdb/fake-gcs"
BIN="$RD/bin/fake-gcs-server-$VERSION"
RUN="$RD/run"
ADDR="${TIDEMARK_FAKE_GCS_ADDR:-127.0.0.1:4443}"
BUCKET="${TIDEMARK_FAKE_GCS_BUCKET:-tidemark}"
READY_SECS="${TIDEMARK_FAKE_GCS_READY_SECS:-60}"

# Go's own install place, when an environment left it out of PATH.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"

die() {
    echo "fake_gcs.sh: $*" >&2
    exit 1
}

build() {
    [ -x "$BIN" ] && return 0
    command -v go >/dev/null 2>&1 || die "go not found (needed once to build fake-gcs-server $VERSION)"
    mkdir -p "$RD/bin"
    local gobin="$RD/gobin"
    rm -rf "$gobin"
    GOBIN="$gobin" timeout 900 go install "github.com/fsouza/fake-gcs-server@$VERSION" \
        >"$RD/install.log" 2>&1 || {
        tail -n 20 "$RD/install.log" >&2
        die "go install fake-gcs-server@$VERSION failed"
    }
    mv "$gobin/fake-gcs-server" "$BIN"
    rm -rf "$gobin"
}

# The recorded pid, if it still runs fake-gcs-server (a reused pid is not ours).
pid() {
    [ -s "$RD/fake-gcs.pid" ] || return 1
    local p argv0
    p="$(cat "$RD/fake-gcs.pid")"
    argv0="$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | sed -n 1p)" || return 1
    [[ "$argv0" == *fake-gcs-server-* ]] || return 1
    echo "$p"
}

cmd_stop() {
    local p
    if p="$(pid)"; then
        kill -TERM "$p" 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while [ -d "/proc/$p" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$RD/fake-gcs.pid"
}

fail() {
    if [ -s "$RUN/fake-gcs.out" ]; then
        echo "--- $RUN/fake-gcs.out" >&2
        tail -n 20 "$RUN/fake-gcs.out" >&2 || true
    fi
    cmd_stop
    die "$*"
}

cmd_start() {
    if pid >/dev/null; then
        echo "http://$ADDR"
        return 0
    fi
    command -v curl >/dev/null 2>&1 || die "curl not found"
    build
    cmd_stop
    if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; then
        die "$ADDR is in use (another fake_gcs.sh?); set TIDEMARK_FAKE_GCS_ADDR to another address"
    fi
    rm -rf "$RUN"
    mkdir -p "$RUN"
    local t0=$SECONDS
    # -public-host: the host the XML API's bucket-in-path URLs are served under.
    setsid "$BIN" -scheme http -host "${ADDR%:*}" -port "${ADDR#*:}" -backend memory \
        -public-host "$ADDR" -external-url "http://$ADDR" -log-level warn \
        </dev/null >"$RUN/fake-gcs.out" 2>&1 &
    echo $! >"$RD/fake-gcs.pid"
    local deadline=$((SECONDS + READY_SECS))
    until curl -sf -m 2 -o /dev/null "http://$ADDR/storage/v1/b" 2>/dev/null; do
        kill -0 "$(cat "$RD/fake-gcs.pid")" 2>/dev/null || fail "fake-gcs-server exited during start"
        [ $SECONDS -lt $deadline ] || fail "fake-gcs-server did not answer on $ADDR within ${READY_SECS}s"
        sleep 0.1
    done
    local code
    code="$(curl -s -m 10 -o "$RUN/bucket.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data "{\"name\":\"$BUCKET\"}" \
        "http://$ADDR/storage/v1/b")" || true
    case "$code" in
    200 | 409) ;;
    *) fail "creating bucket $BUCKET: HTTP $code $(head -c 300 "$RUN/bucket.json" 2>/dev/null)" ;;
    esac
    echo "fake_gcs.sh: GCS ready on http://$ADDR after $((SECONDS - t0))s" >&2
    echo "http://$ADDR"
}

cmd_status() {
    local p
    if p="$(pid)"; then
        echo "fake-gcs-server pid $p running"
    else
        echo "fake-gcs-server not running"
        return 3
    fi
}

cmd_env() {
    pid >/dev/null || die "fake-gcs-server is not running: scripts/fake_gcs.sh start first"
    cat <<EOF
export GOOGLE_SERVICE_ACCOUNT_KEY='{"gcs_base_url":"http://$ADDR","disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}'
export TIDEMARK_FAKE_GCS_BUCKET=$BUCKET
EOF
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) die "usage: fake_gcs.sh start | stop | status | env" ;;
esac
