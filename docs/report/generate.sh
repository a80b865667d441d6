#!/usr/bin/env bash
# Regenerates the example monthly report in docs/report/: a simulated results-day month of
# the DTM hotline (150,000 calls, most of them on results day, surge on; the generator is
# tests/report_support, shared with the report's tests and benchmark), written as the
# report's XLSX, HTML and CSV by `navbat report month`, with the demo configuration (its
# [tenant.billing] prices the invoice), and the HTML page rendered to a PNG by headless
# chromium.
#
#   docs/report/generate.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/report
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo bench --bench report -- --example "$tmp"
export DATABASE_URL="sqlite://$tmp/example.db"
cargo run --release --quiet -- report month 2026-07 --tenant dtm \
    --xlsx "$out/example-2026-07.xlsx" --html "$out/example-2026-07.html" --csv "$tmp/csv"
# The page without the 1,000 call rows would be shorter; the PNG shows its top: the
# headline figures, the four charts and the first tables.
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --hide-scrollbars \
    --window-size=1280,3600 --screenshot="$PWD/$out/example-2026-07.png" \
    "file://$PWD/$out/example-2026-07.html"
cargo run --release --quiet -- report billing 2026-07 --tenant dtm > "$out/example-2026-07-invoice.txt"
echo "written: $out/example-2026-07.{xlsx,html,png} and the invoice"
