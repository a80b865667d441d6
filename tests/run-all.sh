#!/usr/bin/env bash
# The one test command: tools, formatting, lints, then every test of the workspace.
#
#   tests/run-all.sh
#
# On a fresh Debian/Ubuntu machine it installs the system packages the integration tests
# drive for real (SIPp from `sip-tester`, ...), using sudo only when not root. Integration
# tests use loopback ports only and never assert timings.
set -euo pipefail

cd "$(dirname "$0")/.."

# "binary:debian-package" pairs the integration tests need. Postgres' initdb is not on PATH
# on Debian: it is looked for under /usr/lib/postgresql/*/bin (tests/store_support/mod.rs
# finds it there; as root the tests run it as `nobody` through runuser). `openssl` makes the
# test CA of tests/surge_sms_tls.rs; `kill` (procps) stops navbat with signals in the tests.
# baresip and linphonec are the real softphones of tests/softphones.rs. chromium and
# chromedriver drive the desk's pages in tests/desk_browser.rs (WebDriver, headless), with a
# font to render their text.
REQUIRED_TOOLS=(
    "sipp:sip-tester"
    "prometheus:prometheus"
    "postgresql:postgresql"
    "redis-server:redis-server"
    "openssl:openssl"
    "kill:procps"
    "baresip:baresip-core"
    "linphonec:linphone-cli"
    "svcrack:sipvicious"
    "chromium:chromium"
    "chromedriver:chromium-driver"
    "dejavu-fonts:fonts-dejavu-core"
)

have_tool() {
    case "$1" in
        postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 ;;
        dejavu-fonts) [ -d /usr/share/fonts/truetype/dejavu ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

section() {
    printf '\n==== %s ====\n' "$*"
}

install_missing_tools() {
    local missing=()
    local pair bin pkg
    for pair in "${REQUIRED_TOOLS[@]}"; do
        bin="${pair%%:*}"
        pkg="${pair#*:}"
        if ! have_tool "$bin"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "all present: ${REQUIRED_TOOLS[*]}"
        return
    fi
    echo "installing: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

section "system packages for integration tests"
install_missing_tools

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    section "cargo nextest run"
    cargo nextest run --workspace --no-fail-fast
    section "cargo test --doc"
    cargo test --workspace --doc
else
    section "cargo test"
    cargo test --workspace --no-fail-fast
fi

section "all checks passed"
