#!/usr/bin/env bash
# Reproduces web/assets/backbone-digits04.safetensors, the backbone the page's transfer
# task starts from: presets/digits-pretrain.json (the standard small net, digits 0–4 only)
# trained on the CPU with a fixed seed and step count, so the same bytes come out on every
# machine. The file is committed; run this to check it or to make it again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

[ -f web/assets/mnist.bin ] || node scripts/build-mnist.mjs
cargo build --release --bin cnnp
out="$(mktemp -d)"
./target/release/cnnp train presets/digits-pretrain.json --backend cpu --seed 1 --steps 1500 --batch 64 --lr 0.002 --out "$out"
cp "$out/weights.safetensors" web/assets/backbone-digits04.safetensors
echo "wrote web/assets/backbone-digits04.safetensors ($(wc -c < web/assets/backbone-digits04.safetensors) bytes)"
