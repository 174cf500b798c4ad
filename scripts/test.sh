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

# after the build: tests/web/arch.test.mjs checks the architecture toggles through the
# built wasm module's check_spec
section "web unit tests (node --test tests/web)"
node --test tests/web/*.test.mjs

section "end-to-end (Playwright, Debian Chromium)"
node --test --test-concurrency=1 tests/e2e/*.test.mjs

section "all tests passed in $((SECONDS - started)) s"
