#!/usr/bin/env bash
# Measures issue 4's bars on the CPU backend: each task preset trains under its time limit,
# validating every few hundred steps and stopping early once the bar is reached; then the
# transfer comparison (fine-tuned from the shipped digits 0–4 backbone vs from scratch,
# same seed, same steps). Logs and metrics.json per run go to out/bars/ (or $1).
# Figures depend on the machine and its load: run it on an otherwise idle machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
OUT="${1:-out/bars}"
mkdir -p "$OUT"
[ -f web/assets/mnist.bin ] || node scripts/build-mnist.mjs
cargo build --release --bin cnnp
CNNP=./target/release/cnnp

run() { # name preset seconds stop-at [flags...]
  local name=$1 preset=$2 seconds=$3 stop=$4
  shift 4
  echo "== $name: $preset, at most $seconds s, stop at $stop"
  "$CNNP" train "presets/$preset.json" --backend cpu --seed 1 --steps 1000000 --max-seconds "$seconds" \
    --eval-every 250 --stop-at "$stop" --out "$OUT/$name" "$@" | tee "$OUT/$name.log" | grep -a -E "validation|final|reached|limit"
}

only="${BARS:-localize detect transposed unpool resize transposed-unet transfer}"
for b in $only; do
  case $b in
    localize) run localize shapes-localize 300 accuracy=0.95,mean_iou=0.80 --batch 32 --lr 0.003 --box-weight 20 ;;
    detect) run detect shapes-detect 600 map50=0.80 --batch 16 --lr 0.003 ;;
    transposed | unpool | resize | transposed-unet | unpool-unet | resize-unet) run "segment-$b" "shapes-segment-$b" 600 mean_iou=0.85 --batch 16 --lr 0.003 ;;
    transfer)
      for mode in finetune scratch; do
        flags=()
        [ $mode = finetune ] && flags=(--backbone web/assets/backbone-digits04.safetensors --freeze 0,3)
        echo "== transfer-$mode: digits 5–9, 10 labels per class, 300 steps"
        "$CNNP" train presets/digits-transfer.json --backend cpu --seed 1 --steps 300 --batch 50 --lr 0.003 \
          --out "$OUT/transfer-$mode" "${flags[@]}" | tee "$OUT/transfer-$mode.log" | grep -a -E "backbone|final"
      done ;;
    *) echo "unknown bar $b" >&2; exit 2 ;;
  esac
done
