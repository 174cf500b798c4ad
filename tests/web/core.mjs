// The built wasm core (web/pkg, made by scripts/build.sh) in Node, for the web unit tests
// that need the Rust side itself: its check_spec, and the layer kinds table that the page
// gets from its worker (set in arch.js here as the page sets it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setKinds } from '../../web/src/arch.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/pkg');

/** The wasm module, initialised; its layer kinds set in arch.js (returned by type as `kinds`). */
export async function loadCore() {
  const binary = path.join(PKG, 'cnn_playground_bg.wasm');
  if (!fs.existsSync(binary)) {
    throw new Error(`${path.relative(process.cwd(), binary)} is missing: run \`npm run build\` before the web unit tests`);
  }
  const wasm = await import(path.join(PKG, 'cnn_playground.js'));
  wasm.initSync({ module: fs.readFileSync(binary) });
  return { wasm, kinds: setKinds(JSON.parse(wasm.layer_kinds())) };
}
