#!/usr/bin/env bash
# Builds everything the page needs into web/ (all of it gitignored):
#   web/assets/mnist.bin   the MNIST digits (scripts/build-mnist.mjs)
#   web/pkg/               the wasm core (wasm-pack, release)
#   web/vendor/            uPlot (ESM + css) and ConvNetJS (for the benchmark page)
#   web/presets/           a copy of presets/*.json, so a static deploy of web/ works
#   web/chapters/          a copy of chapters/*.json and index.json: every chapter, in order
# Run scripts/setup.sh first (npm run build does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

echo "build: MNIST asset"
node scripts/build-mnist.mjs

echo "build: wasm core (wasm-pack, release)"
wasm-pack build crate --target web --release --out-dir ../web/pkg --no-pack

echo "build: vendor files"
mkdir -p web/vendor
cp node_modules/uplot/dist/uPlot.esm.js web/vendor/uPlot.esm.js
cp node_modules/uplot/dist/uPlot.min.css web/vendor/uPlot.min.css
cp node_modules/convnetjs/build/convnet.js web/vendor/convnet.js

echo "build: presets"
mkdir -p web/presets
rm -f web/presets/*.json
if compgen -G "presets/*.json" >/dev/null; then
  cp presets/*.json web/presets/
else
  echo "build: warning: presets/ has no .json files" >&2
fi

echo "build: chapters"
# The order of ../shared/CHAPTERS.md (crate/src/chapters/mod.rs checks that this line matches).
CHAPTER_ORDER="l1-l2 batch-norm dropout network-in-network deconvolution up-pooling"
mkdir -p web/chapters
rm -f web/chapters/*.json
cp chapters/*.json web/chapters/
CHAPTER_ORDER="$CHAPTER_ORDER" node -e '
const fs = require("fs");
const order = process.env.CHAPTER_ORDER.split(" ");
const files = fs.readdirSync("chapters").filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
const unlisted = files.filter((s) => !order.includes(s));
const missing = order.filter((s) => !files.includes(s));
if (unlisted.length || missing.length) {
  console.error(`build: chapters/ and CHAPTER_ORDER differ: unlisted ${unlisted}, missing ${missing}`);
  process.exit(1);
}
const all = order.map((s) => JSON.parse(fs.readFileSync(`chapters/${s}.json`, "utf8")));
fs.writeFileSync("web/chapters/index.json", JSON.stringify(all, null, 2) + "\n");
'

echo "build: done -> web/"
