#!/usr/bin/env bash
# Every test, in order: formatting, native Rust tests (GPU tests on Mesa's lavapipe),
# wasm tests in headless Chromium (CPU and WebGPU via SwiftShader), then the built page
# end to end with Playwright. Installs whatever is missing first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# Mesa's lavapipe wants a runtime dir; without one it prints a warning per device.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/cnnp-xdg-runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

section() { printf '\n=== %s ===\n' "$*"; }
started=$SECONDS

section "setup"
bash scripts/setup.sh --with-browser

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo test --workspace (native; GPU tests on lavapipe)"
cargo test --workspace

section "wasm-pack test --headless --chrome crate (CPU + WebGPU in Chromium)"
WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver crate

section "build"
bash scripts/build.sh

# every chapter's experiment, small (--quick), with the release CLI: result.json must parse
# (after the build: it needs web/assets/mnist.bin) and name the chapter and its findings (a few seconds to a minute each)
section "cnnp experiment <slug> --quick (every chapter, release)"
cargo build --release -p cnn-playground --bin cnnp
experiments="$(mktemp -d)"
for slug in l1-l2 batch-norm dropout network-in-network deconvolution up-pooling; do
  "${CARGO_TARGET_DIR:-target}/release/cnnp" experiment "$slug" --quick --out "$experiments/$slug" --data web/assets/mnist.bin >"$experiments/$slug.log" \
    || { cat "$experiments/$slug.log"; exit 1; }
  SLUG="$slug" RESULT="$experiments/$slug/result.json" node -e '
const r = JSON.parse(require("fs").readFileSync(process.env.RESULT, "utf8"));
const ok = r.chapter === process.env.SLUG && r.findings.length > 0 && r.findings.every((f) => typeof f.holds === "boolean" && f.claim && f.source && f.values) && Object.keys(r.runs).length > 0;
if (!ok) { console.error(`${process.env.RESULT}: not a complete result`); process.exit(1); }
console.log(`${process.env.SLUG}: ${r.findings.map((f) => (f.holds ? "holds" : "does not hold")).join(", ")} (quick)`);
'
done
rm -rf "$experiments"

# after the build: tests/web/arch.test.mjs checks the architecture toggles through the
# built wasm module's check_spec
section "web unit tests (node --test tests/web)"
node --test tests/web/*.test.mjs

section "end-to-end (Playwright, Debian Chromium)"
node --test --test-concurrency=1 tests/e2e/*.test.mjs

section "all tests passed in $((SECONDS - started)) s"
