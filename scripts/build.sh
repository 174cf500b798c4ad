#!/usr/bin/env bash
# Builds everything the page needs into web/ (all of it gitignored):
#   web/assets/mnist.bin   the MNIST digits (scripts/build-mnist.mjs)
#   web/pkg/               the wasm core (wasm-pack, release)
#   web/vendor/            uPlot (ESM + css) and ConvNetJS (for the benchmark page)
#   web/presets/           a copy of presets/*.json, so a static deploy of web/ works
#   web/chapters/          a copy of chapters/*.json and index.json (the list of them all)
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
mkdir -p web/chapters
rm -f web/chapters/*.json
if compgen -G "chapters/*.json" >/dev/null; then
  cp chapters/*.json web/chapters/
fi
node -e '
const fs = require("fs");
const files = fs.existsSync("chapters") ? fs.readdirSync("chapters").filter((f) => f.endsWith(".json")).sort() : [];
const list = files.map((f) => JSON.parse(fs.readFileSync(`chapters/${f}`, "utf8")));
fs.writeFileSync("web/chapters/index.json", JSON.stringify(list));
'

echo "build: done -> web/"
