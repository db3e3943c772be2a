#!/usr/bin/env bash
# Installs what tidemark needs to build, test and demo on a fresh Debian machine (run as
# root). Idempotent and quick when everything is already there.
set -euo pipefail

need_apt=()
# haproxy: the reference proxy of bench/proxy-bench; prometheus: the real scraper of
# the proxy's metrics in tests/proxy_prometheus.rs; ceph-mon, ceph-osd, radosgw (and
# ceph-common, which they pull in: ceph, ceph-authtool, monmaptool, radosgw-admin): the
# real S3 server of scripts/radosgw.sh for the remote repository's tests (tests/repo_s3.rs);
# curl: that script's readiness probe. ceph-mgr is not needed: radosgw and the OSD run
# without one.
for pkg in libpcap-dev tshark tcpdump pkg-config haproxy prometheus ceph-mon ceph-osd radosgw curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Real client drivers, used by tests as independent peers; pyarrow reads the
# Parquet exports back as an independent reader.
python_pkgs=(cassandra-driver pymongo lz4 python-snappy zstandard backports.zstd pyarrow)
missing_py=()
for mod in "${python_pkgs[@]}"; do
    pip show "$mod" >/dev/null 2>&1 || missing_py+=("$mod")
done
if [ "${#missing_py[@]}" -gt 0 ]; then
    echo "setup: pip installing ${missing_py[*]}" >&2
    pip install -q "${missing_py[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup" >&2; exit 1; }
