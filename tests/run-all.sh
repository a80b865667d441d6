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
# font to render their text. Dovecot (IMAP) and aiosmtpd (SMTP) are the real mail servers of
# tests/mail.rs; the tests run them from their own configs on free loopback ports and never
# use a system instance (see tests/common/mail.rs). openpyxl reads the monthly report's
# workbook back in tests/report.rs, another reader than the one that wrote it.
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
    "dovecot:dovecot-imapd"
    "aiosmtpd:python3-aiosmtpd"
    "openpyxl:python3-openpyxl"
)

have_tool() {
    case "$1" in
        postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 ;;
        dejavu-fonts) [ -d /usr/share/fonts/truetype/dejavu ] ;;
        # /usr/sbin may not be on a user's PATH; the imap binary is what dovecot-imapd adds.
        dovecot) [ -x /usr/lib/dovecot/imap ] && { [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1; } ;;
        # Debian's module, seen by Debian's python3 (a pyenv/venv python3 on PATH may not see it).
        aiosmtpd) /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || python3 -c 'import aiosmtpd' >/dev/null 2>&1 ;;
        # The reader tests/report.rs checks the monthly workbook with; Debian's python3 only.
        openpyxl) /usr/bin/python3 -c 'import openpyxl' >/dev/null 2>&1 ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# Each section says when it began and how long the run had taken by then, so a slow or
# stalled step (a crate download, a build on a loaded machine) is seen in the log.
section() {
    printf '\n==== %s ==== (%s UTC, %d s in)\n' "$*" "$(date -u +%H:%M:%S)" "$SECONDS"
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
    # Installed only for the tests: the package enables a system Dovecot listening on 143 and
    # 993 on every interface. The tests do not need it (they start their own on loopback),
    # so it is switched off rather than left serving IMAP from a developer's machine.
    if [[ " ${missing[*]} " == *" dovecot-imapd "* ]] && command -v systemctl >/dev/null 2>&1; then
        "${sudo[@]}" systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    fi
}

section "system packages for integration tests"
install_missing_tools

section "cargo fetch (crates.io downloads, before any build)"
cargo fetch

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

# Bounded fuzzing of every parser (fuzz/README.md). Every fixture and seed is replayed through
# the same checks by tests/fuzz_regressions.rs above, on the stable toolchain. The libFuzzer
# run itself needs the nightly toolchain and a build of its own that took 26 minutes cold on
# this project's 2-core machines (every dependency rebuilt with coverage), more than the whole
# suite, so it is opt-in: NAVBAT_FUZZ_SECS=20 tests/run-all.sh (seconds per target).
if [ -n "${NAVBAT_FUZZ_SECS:-}" ] && rustup toolchain list 2>/dev/null | grep -q nightly; then
    section "fuzzing, ${NAVBAT_FUZZ_SECS} s per target (fuzz/run.sh)"
    fuzz/run.sh "${NAVBAT_FUZZ_SECS}"
elif [ -n "${NAVBAT_FUZZ_SECS:-}" ]; then
    section "fuzzing SKIPPED: no nightly toolchain (rustup toolchain install nightly, then fuzz/run.sh)"
else
    section "fuzzing not run (opt-in: NAVBAT_FUZZ_SECS=20 tests/run-all.sh); fixtures replayed by tests/fuzz_regressions.rs"
fi

section "all checks passed"
