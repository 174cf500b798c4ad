// The training worker: owns the wasm Playground, so the main thread only draws.
//
// Protocol (plain messages; bulk data as transferable typed arrays):
//   main -> worker  {type: 'configure', state}   the full state table (see state.js)
//                   {type: 'play'} {type: 'pause'} {type: 'step'} {type: 'probe'} {type: 'reset'}
//   worker -> main  {type: 'report', kind: 'status', run, backend, reason, running, step, building}
//                   {type: 'report', kind: 'train', run, step, loss, accuracy, phase, diverged_at,
//                                    ms_per_step, steps_per_call}
//                   {type: 'probe-result', run, step, val_loss, val_accuracy, examples,
//                                    filters: {shape, data: Float32Array},
//                                    digits: {pixels: Uint8Array (k·784), labels, preds: Uint8Array,
//                                             confidence: Float32Array}}
//                   {type: 'error', message, scope: 'run' | 'session'}
//
// All calls into the Playground go through one loop (pump), one at a time: a message only
// changes what is wanted; the loop does it between two training calls.

import { REBUILD_FIELDS, toConfig } from './state.js';

const TARGET_CALL_MS = 75; // a step(k) call should take 50-100 ms
const MAX_STEPS_PER_CALL = 64;
const MIN_PROBE_INTERVAL_MS = 400; // probes at most ~2.5 times a second
const PROBE_DIGITS = 12;
const EVAL_MIN = 100;
const EVAL_MAX = 500;
const EVAL_TARGET_MS = 120;
const MNIST_HEADER = 16;
const LIVE_FIELDS = ['lr', 'batch', 'optimizer', 'momentum'];

let wasm = null; // the wasm-bindgen module, once loaded
let mnist = null; // Uint8Array of assets/mnist.bin
const presets = new Map(); // preset name -> spec JSON text

let wanted = null; // the latest state table from the main thread
let running = false;
let pendingSteps = 0;
let resetWanted = false;
let probeWanted = false;
let backendOverride = null; // 'cpu' after the GPU failed mid-run, until the backend setting changes

let pg = null; // the Playground
let attempted = null; // rebuild key of the last create() attempt (success or not)
let applied = null; // live config JSON last given to the Playground
let backendInfo = { backend: 'none', reason: 'starting' };
let run = 0; // increments on every (re)build; lets the page clear its charts
let step = 0;
let stepsPerCall = 1;
let evalExamples = EVAL_MIN;
let nextProbeAt = 0;
let pumping = false;

function post(message, transfer = []) {
  self.postMessage(message, transfer);
}

function messageOf(err) {
  if (err instanceof Error) return err.message || String(err);
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

function postError(context, err, scope = 'run') {
  post({ type: 'error', scope, message: `${context}: ${messageOf(err)}` });
}

function postStatus(building = false) {
  post({
    type: 'report',
    kind: 'status',
    run,
    backend: backendInfo.backend,
    reason: backendInfo.reason,
    running,
    step,
    building,
    ready: pg !== null,
  });
}

// Nothing escapes silently: anything thrown outside the loop reaches the page too.
self.addEventListener('error', (event) => postError('worker', event.error ?? event.message));
self.addEventListener('unhandledrejection', (event) => postError('worker', event.reason));

self.onmessage = (event) => {
  const msg = event.data ?? {};
  switch (msg.type) {
    case 'configure':
      if (wanted && msg.state.backend !== wanted.backend) backendOverride = null;
      wanted = msg.state;
      break;
    case 'play':
      running = true;
      break;
    case 'pause':
      running = false;
      pendingSteps = 0;
      break;
    case 'step':
      running = false;
      pendingSteps += 1;
      break;
    case 'probe':
      probeWanted = true;
      break;
    case 'reset':
      resetWanted = true;
      break;
    default:
      postError('worker', `unknown message type "${msg.type}"`);
      return;
  }
  if (msg.type === 'play' || msg.type === 'pause' || msg.type === 'step') postStatus();
  kick();
};

// ---------------------------------------------------------------------------------------
// The loop.

function yieldToMessages() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function kick() {
  if (pumping) return;
  pumping = true;
  try {
    for (;;) {
      let more = false;
      try {
        more = await tick();
      } catch (err) {
        more = await recover(err);
      }
      if (!more) break;
      await yieldToMessages();
    }
  } finally {
    pumping = false;
  }
}

function rebuildKey(state) {
  const key = Object.fromEntries(REBUILD_FIELDS.map((name) => [name, state[name]]));
  if (backendOverride) key.backend = backendOverride;
  return JSON.stringify(key);
}

/** The config for set_config: only the live fields; the Rust side keeps the rest. */
function liveConfig(state) {
  return JSON.stringify(Object.fromEntries(LIVE_FIELDS.map((name) => [name, state[name]])));
}

/** Does one unit of work; returns true if it did any (the loop then looks again). */
async function tick() {
  if (!wanted) return false;
  if (resetWanted || rebuildKey(wanted) !== attempted) {
    await rebuild();
    return true;
  }
  if (!pg) {
    // The last build failed and nothing that could fix it has changed.
    if (running || pendingSteps > 0) {
      running = false;
      pendingSteps = 0;
      postStatus();
      postError('cannot train', 'the model did not build; fix the settings above or press reset');
    }
    return false;
  }
  const live = liveConfig(wanted);
  if (live !== applied) {
    applied = live; // even if it throws: do not retry the same values in a loop
    try {
      pg.set_config(live);
    } catch (err) {
      postError('could not apply the new settings', err);
    }
  }
  if (pendingSteps > 0) {
    pendingSteps -= 1;
    await train(1);
    await probe();
    return true;
  }
  if (running) {
    await train(stepsPerCall);
    if (performance.now() >= nextProbeAt) await probe();
    return true;
  }
  if (probeWanted) {
    await probe();
    return true; // messages may have arrived meanwhile: look again
  }
  return false;
}

/** An error inside the loop: report it, stop playing, and fall back to the CPU if the GPU failed. */
async function recover(err) {
  const onGpu = pg !== null && backendInfo.backend === 'webgpu';
  running = false;
  pendingSteps = 0;
  if (onGpu) {
    postError('training on WebGPU failed; switched to the CPU backend and restarted', err, 'session');
    backendOverride = 'cpu';
    resetWanted = true;
    return true;
  }
  postError('training', err);
  postStatus();
  return false;
}

// ---------------------------------------------------------------------------------------
// Building the Playground.

async function loadWasm() {
  if (wasm) return wasm;
  const url = new URL('../pkg/cnn_playground.js', import.meta.url);
  let mod;
  try {
    mod = await import(url.href);
    await mod.default();
  } catch (err) {
    throw new Error(`could not load the wasm core from ${url.pathname} (${messageOf(err)}); run \`npm run build\``);
  }
  wasm = mod;
  return wasm;
}

async function fetchOk(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`could not fetch ${what} from ${url.pathname}: ${messageOf(err)}`);
  }
  if (!response.ok) {
    throw new Error(`could not fetch ${what} from ${url.pathname}: HTTP ${response.status}`);
  }
  return response;
}

async function loadMnist() {
  if (mnist) return mnist;
  const url = new URL('../assets/mnist.bin', import.meta.url);
  const response = await fetchOk(url, 'the MNIST digits (run `npm run build`)');
  const bytes = new Uint8Array(await response.arrayBuffer());
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (bytes.length < MNIST_HEADER || magic !== 'MNST') {
    throw new Error(`${url.pathname} is not an MNIST asset (magic "${magic}", ${bytes.length} bytes); run \`npm run build\``);
  }
  mnist = bytes;
  return mnist;
}

async function loadPreset(name) {
  if (presets.has(name)) return presets.get(name);
  const url = new URL(`../presets/${encodeURIComponent(name)}.json`, import.meta.url);
  const text = await (await fetchOk(url, `the model preset "${name}"`)).text();
  presets.set(name, text);
  return text;
}

async function create(spec, config) {
  const pgNew = await wasm.Playground.create(spec, JSON.stringify(config), mnist);
  const info = JSON.parse(pgNew.backend());
  return { pgNew, info };
}

async function rebuild() {
  resetWanted = false;
  attempted = rebuildKey(wanted);
  const state = wanted;
  if (pg) {
    pg.free();
    pg = null;
  }
  run += 1;
  step = 0;
  stepsPerCall = 1;
  evalExamples = EVAL_MIN;
  nextProbeAt = 0;
  backendInfo = { backend: 'none', reason: 'building the model' };
  postStatus(true);

  try {
    await Promise.all([loadWasm(), loadMnist()]);
    const spec = await loadPreset(state.preset);
    const config = toConfig(state);
    if (backendOverride) config.backend = backendOverride;
    let built;
    try {
      built = await create(spec, config);
    } catch (err) {
      if (config.backend === 'cpu') throw err;
      // The GPU path could not start (no adapter, lost device, ...): keep going on the CPU.
      built = await create(spec, { ...config, backend: 'cpu' });
      built.info.reason = `${config.backend} could not start (${messageOf(err)}); running on the CPU instead`;
    }
    pg = built.pgNew;
    backendInfo = built.info;
    applied = liveConfig(state);
    probeWanted = true;
  } catch (err) {
    pg = null;
    running = false;
    pendingSteps = 0;
    backendInfo = { backend: 'none', reason: 'the model did not build' };
    postError('could not build the model', err);
  }
  postStatus();
}

// ---------------------------------------------------------------------------------------
// Training and probing.

async function train(n) {
  const t0 = performance.now();
  const report = JSON.parse(await pg.step(n));
  const perStep = (performance.now() - t0) / n;
  step = report.step;
  // Next call: ~TARGET_CALL_MS of work, growing at most 2x per call.
  const ideal = Math.round(TARGET_CALL_MS / Math.max(perStep, 0.05));
  stepsPerCall = Math.max(1, Math.min(MAX_STEPS_PER_CALL, ideal, stepsPerCall * 2));
  post({ type: 'report', kind: 'train', run, ...report, steps_per_call: n });
  if (report.phase === 'diverged') {
    running = false;
    pendingSteps = 0;
    postStatus();
  }
}

async function probe() {
  probeWanted = false;
  const t0 = performance.now();
  const evalStart = performance.now();
  const ev = JSON.parse(await pg.evaluate(evalExamples));
  const evalMs = performance.now() - evalStart;
  // Keep evaluation near EVAL_TARGET_MS (within EVAL_MIN..EVAL_MAX examples).
  const perExample = evalMs / Math.max(1, ev.examples);
  evalExamples = Math.max(EVAL_MIN, Math.min(EVAL_MAX, Math.round(EVAL_TARGET_MS / Math.max(perExample, 1e-3))));

  const f = JSON.parse(await pg.filters());
  const p = JSON.parse(await pg.predict(PROBE_DIGITS));

  const count = new DataView(mnist.buffer, mnist.byteOffset).getUint32(4, true);
  const pixelsPer = 784;
  const pixels = new Uint8Array(p.indices.length * pixelsPer);
  p.indices.forEach((index, i) => {
    const start = MNIST_HEADER + count + index * pixelsPer;
    pixels.set(mnist.subarray(start, start + pixelsPer), i * pixelsPer);
  });
  const filters = { shape: f.shape, data: Float32Array.from(f.data) };
  const digits = {
    pixels,
    labels: Uint8Array.from(p.labels),
    preds: Uint8Array.from(p.preds),
    confidence: Float32Array.from(p.confidence),
  };
  post(
    {
      type: 'probe-result',
      run,
      step,
      val_loss: ev.val_loss,
      val_accuracy: ev.val_accuracy,
      examples: ev.examples,
      filters,
      digits,
    },
    [filters.data.buffer, pixels.buffer, digits.labels.buffer, digits.preds.buffer, digits.confidence.buffer],
  );
  // Probing must not eat the training: at most ~20% of the time, and ~2.5 times a second.
  const took = performance.now() - t0;
  nextProbeAt = performance.now() + Math.max(MIN_PROBE_INTERVAL_MS, 4 * took);
}
