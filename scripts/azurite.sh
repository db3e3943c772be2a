#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator, npm package `azurite`), blob service only,
# on loopback: for tests that hold tidemark's remote repository (#16) on `az://` against
# an Azure Blob server we did not write, through the `object_store` crate.
#
#   scripts/azurite.sh start    installs it once (npm, under target/realdb/azurite),
#                               starts the blob service on TIDEMARK_AZURITE_ADDR
#                               (127.0.0.1:10000, object_store's emulator default), waits
#                               until it answers, creates the container
#                               TIDEMARK_AZURITE_CONTAINER (tidemark); prints the URL
#   scripts/azurite.sh stop     ends exactly the process `start` recorded (SIGTERM, then
#                               SIGKILL after a bounded wait)
#   scripts/azurite.sh status   exit 0 when it runs
#   scripts/azurite.sh env      `export` lines for object_store's
#                               MicrosoftAzureBuilder::from_env (emulator mode)
#
# Blobs and their metadata are kept in memory (--inMemoryPersistence, which refuses
# --location); its output and debug log live under target/realdb/azurite/run, wiped at
# each start. The account is Azurite's
# well-known development account (devstoreaccount1 and its published key, which
# object_store also knows): public, but `env` is the only place that prints it.
# Object_store has no create-container call: the container is made by a Shared Key signed
# `PUT /<account>/<container>?restype=container`, signed in a few lines of Node (Node
# is needed for Azurite anyway).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${TIDEMARK_AZURITE_VERSION:-3.37.0}"
RD="$ROOT/target/realdb/azurite"
PKG="$RD/pkg-$VERSION"
BIN="$PKG/node_modules/.bin/azurite-blob"
RUN="$RD/run"
ADDR="${TIDEMARK_AZURITE_ADDR:-127.0.0.1:10000}"
CONTAINER="${TIDEMARK_AZURITE_CONTAINER:-tidemark}"
READY_SECS="${TIDEMARK_AZURITE_READY_SECS:-60}"
ACCOUNT="devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
DEV_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

die() {
    echo "azurite.sh: $*" >&2
    exit 1
}

install() {
    [ -x "$BIN" ] && return 0
    command -v npm >/dev/null 2>&1 || die "npm not found (needed once to install azurite $VERSION)"
    mkdir -p "$PKG"
    timeout 600 npm install --prefix "$PKG" --no-audit --no-fund --loglevel=error \
        "azurite@$VERSION" >"$RD/install.log" 2>&1 || {
        tail -n 20 "$RD/install.log" >&2
        die "npm install azurite@$VERSION failed"
    }
    [ -x "$BIN" ] || die "npm installed no $BIN"
}

# The recorded pid, if it still runs Azurite (a reused pid is not ours).
pid() {
    [ -s "$RD/azurite.pid" ] || return 1
    local p
    p="$(cat "$RD/azurite.pid")"
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q azurite-blob || return 1
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
    rm -f "$RD/azurite.pid"
}

fail() {
    local f
    for f in "$RUN/azurite.out" "$RUN/debug.log"; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -n 20 "$f" >&2 || true
    done
    cmd_stop
    die "$*"
}

# Creates the container: 201 made, 409 already there.
create_container() {
    timeout 20 node - "$ADDR" "$ACCOUNT" "$CONTAINER" <<'EOF'
const crypto = require("crypto"), http = require("http");
const [addr, account, container] = process.argv.slice(2);
const key = Buffer.from(process.env.AZ_KEY, "base64");
const [host, port] = addr.split(":");
const date = new Date().toUTCString(), version = "2021-08-06";
const path = `/${account}/${container}`;
// Shared Key: verb, 11 standard headers (all empty here), x-ms-* headers, resource.
const toSign = ["PUT", "", "", "", "", "", "", "", "", "", "", "",
  `x-ms-date:${date}\nx-ms-version:${version}`,
  `/${account}${path}\nrestype:container`].join("\n");
const sig = crypto.createHmac("sha256", key).update(toSign, "utf8").digest("base64");
const req = http.request({ host, port, method: "PUT", path: `${path}?restype=container`,
  timeout: 10000,
  headers: { "x-ms-date": date, "x-ms-version": version, "Content-Length": 0,
             Authorization: `SharedKey ${account}:${sig}` } }, (res) => {
  let body = "";
  res.on("data", (c) => (body += c));
  res.on("end", () => {
    if (res.statusCode === 201 || res.statusCode === 409) process.exit(0);
    console.error(`PUT container: ${res.statusCode} ${body}`);
    process.exit(1);
  });
});
req.on("timeout", () => req.destroy(new Error("timeout")));
req.on("error", (e) => { console.error(`PUT container: ${e.message}`); process.exit(1); });
req.end();
EOF
}

cmd_start() {
    if pid >/dev/null; then
        echo "http://$ADDR"
        return 0
    fi
    command -v node >/dev/null 2>&1 || die "node not found (Azurite runs on Node)"
    command -v curl >/dev/null 2>&1 || die "curl not found"
    install
    cmd_stop
    if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; then
        die "$ADDR is in use (another azurite.sh?); set TIDEMARK_AZURITE_ADDR to another address"
    fi
    rm -rf "$RUN"
    mkdir -p "$RUN"
    local t0=$SECONDS
    setsid "$BIN" --blobHost "${ADDR%:*}" --blobPort "${ADDR#*:}" \
        --inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
        --debug "$RUN/debug.log" </dev/null >"$RUN/azurite.out" 2>&1 &
    echo $! >"$RD/azurite.pid"
    local deadline=$((SECONDS + READY_SECS)) code
    while :; do
        kill -0 "$(cat "$RD/azurite.pid")" 2>/dev/null || fail "azurite exited during start"
        # Any HTTP answer (an anonymous request is refused, 4xx) means it listens.
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$ADDR/$ACCOUNT?comp=list" 2>/dev/null || true)"
        [ -n "$code" ] && [ "$code" != 000 ] && break
        [ $SECONDS -lt $deadline ] || fail "azurite did not answer on $ADDR within ${READY_SECS}s"
        sleep 0.1
    done
    AZ_KEY="$DEV_KEY" create_container || fail "creating container $CONTAINER failed"
    echo "azurite.sh: blob service ready on http://$ADDR after $((SECONDS - t0))s" >&2
    echo "http://$ADDR"
}

cmd_status() {
    local p
    if p="$(pid)"; then
        echo "azurite pid $p running"
    else
        echo "azurite not running"
        return 3
    fi
}

cmd_env() {
    pid >/dev/null || die "azurite is not running: scripts/azurite.sh start first"
    cat <<EOF
export AZURE_STORAGE_USE_EMULATOR=true
export AZURITE_BLOB_STORAGE_URL=http://$ADDR
export AZURE_STORAGE_ACCOUNT_NAME=$ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY=$DEV_KEY
export TIDEMARK_AZURITE_CONTAINER=$CONTAINER
EOF
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) die "usage: azurite.sh start | stop | status | env" ;;
esac
