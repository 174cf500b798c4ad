#!/usr/bin/env bash
# Installs whatever is missing to build (and, with --with-browser, to test) the
# playground on a fresh machine. Idempotent: a second run only checks.
#
#   scripts/setup.sh                 wasm32 target, wasm-bindgen-cli (= Cargo.lock), wasm-pack, npm packages
#   scripts/setup.sh --with-browser  + Debian chromium, chromium-driver, mesa-vulkan-drivers (lavapipe)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) WITH_BROWSER=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument '$arg' (expected --with-browser)" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}
need cargo "install Rust from https://rustup.rs"
need rustup "install Rust with rustup (https://rustup.rs): the wasm32 target is added through it"
need node "install Node.js 18 or newer"
need npm "install npm (it comes with Node.js)"

# --- Debian packages for the browser tests (CI runs as root) -------------------------
if [[ "$WITH_BROWSER" == 1 ]]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  compgen -G "/usr/share/vulkan/icd.d/lvp_icd*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then
      command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install ${missing[*]}"
      SUDO="sudo"
    fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
  else
    say "chromium, chromium-driver, mesa-vulkan-drivers: present"
  fi
fi

# --- Rust: wasm32 target ------------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rust target wasm32-unknown-unknown: present"
else
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# rustfmt: the test run checks formatting.
if cargo fmt --version >/dev/null 2>&1; then
  say "rustfmt: present"
else
  say "adding rust component rustfmt"
  rustup component add rustfmt
fi

# --- wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock ---
if [[ ! -f Cargo.lock ]]; then
  say "no Cargo.lock yet: generating it"
  cargo generate-lockfile
fi
WB_VERSION="$(awk '
  /^\[\[package\]\]/ { in_wb = 0 }
  /^name = "wasm-bindgen"$/ { in_wb = 1 }
  in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)"
[[ -n "$WB_VERSION" ]] || die "Cargo.lock has no wasm-bindgen package (is it a dependency of crate/?)"

installed_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$installed_wb" == "$WB_VERSION" ]]; then
  say "wasm-bindgen-cli $WB_VERSION: present"
else
  say "installing wasm-bindgen-cli $WB_VERSION (found '${installed_wb:-none}'; takes a few minutes)"
  # --locked first (reproducible). If the registry no longer resolves the CLI's own
  # lockfile (a yanked transitive crate), fall back to a fresh resolution of the same
  # CLI version: the version that must match the crate is the CLI's, not its deps'.
  if ! cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --force; then
    say "locked install of wasm-bindgen-cli failed; retrying without --locked"
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
  fi
fi

# --- wasm-pack ------------------------------------------------------------------------
if command -v wasm-pack >/dev/null 2>&1; then
  say "$(wasm-pack --version): present"
else
  say "installing wasm-pack (takes a few minutes)"
  if ! cargo install wasm-pack --locked; then
    say "locked install of wasm-pack failed; retrying without --locked"
    cargo install wasm-pack
  fi
fi

# --- npm packages (skipped when node_modules matches the lockfile) ----------------------
stamp="node_modules/.package-lock.json"
if [[ -f "$stamp" && "$stamp" -nt package.json && ( ! -f package-lock.json || "$stamp" -nt package-lock.json ) ]]; then
  say "npm packages: up to date"
elif [[ -f package-lock.json ]]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
else
  say "installing npm packages (npm install)"
  npm install --no-audit --no-fund
fi

say "done"
