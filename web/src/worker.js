// The training worker: owns the wasm Playground, so the main thread only draws.
//
// Protocol (plain messages; bulk data as transferable typed arrays):
//   main -> worker  {type: 'configure', state, spec}  the full state table (see state.js) and
//                                    the spec JSON it resolves to (preset + arch)
//                   {type: 'play'} {type: 'pause'} {type: 'step'} {type: 'probe'} {type: 'reset'}
//                   {type: 'view', layer, example}    what the per-layer views show
//                   {type: 'check', id, spec}         validate a spec for the layer editor
//                   {type: 'export', what: 'weights' | 'model_py'}
//   worker -> main  {type: 'report', kind: 'status', run, backend, reason, running, step, building}
//                   {type: 'report', kind: 'train', run, step, loss, penalty, accuracy, phase,
//                                    diverged_at, ms_per_step, steps_per_call}
//                                    parts: {term: loss} (tasks with several loss terms),
//                                    twin: {loss, accuracy} | null (transfer: the from-scratch run)
//                   {type: 'model', run, summary, task, transfer: {loaded, skipped, source} | null}
//                                                     the built model's summary() (layers, totals)
//                   {type: 'probe-result', run, step, val_loss, val_accuracy, examples, metrics,
//                                    twin: {val_loss, val_accuracy, metrics} | null,
//                                    filters: {shape, data: Float32Array} | null,
//                                    digits: {pixels: Uint8Array (k·784), labels, preds: Uint8Array,
//                                             confidence: Float32Array} | null (MNIST classification),
//                                    outputs: Playground.outputs(k), unpacked | null (every other task)}
//                   {type: 'outputs-result', run, step, outputs}  redrawn outputs (no evaluation)
//                                    after an NMS / score threshold change, and between
//                                    probes while training (up to 4 times a second)
//                   {type: 'view-result', run, step, layer, kind, example, label, input: [C,H,W],
//                                    image: Float32Array,
//                                    activation: {shape, data: Float32Array} | null,
//                                    filters: {shape, data: Float32Array} | null,
//                                    weights: {params: [{name, group, shape, stats}], all: {count, zeros, near_zeros}} | null,
//                                    bn: {mean: Float32Array, var: Float32Array} | null,
//                                    missing: [names of Playground methods this build lacks]}
//                                    (one Playground.layer_view call: one GPU round trip)
//                   {type: 'check-result', id, result} | {type: 'check-result', id, error}
//                   {type: 'export-result', what, filename, data: Uint8Array | string}
//                   {type: 'error', message, scope: 'run' | 'session'}
//
// All calls into the Playground go through one loop (pump), one at a time: a message only
// changes what is wanted; the loop does it between two training calls. check_spec is a
// pure function of the module, answered at once.
//
// The probes that carry images, maps or kernels (filters, predict, outputs, layer_view)
// return [header JSON, ...typed arrays] (see wasm.rs); unpack() turns that into the object
// above, typed arrays in place, and their buffers are posted on as transferables.

import { LIVE_FIELDS, toConfig } from './state.js';

const TARGET_CALL_MS = 75; // a step(k) call should take 50-100 ms
const MAX_STEPS_PER_CALL = 64;
const MIN_PROBE_INTERVAL_MS = 400; // probes at most ~2.5 times a second
const PROBE_DIGITS = 12;
const EVAL_MIN = 100;
const EVAL_MAX = 500;
const EVAL_TARGET_MS = 120;
const MNIST_HEADER = 16;
const MIN_VIEW_INTERVAL_MS = 1000; // per-layer views at most about once a second while training
const MIN_OUTPUTS_INTERVAL_MS = 250; // task outputs up to 4 times a second while training
const EXPORT_FILES = { weights: 'weights.safetensors', model_py: 'model.py' };
const PROBE_OUTPUTS = 8; // validation examples whose decoded outputs are drawn
const BACKBONE_URL = '../assets/backbone-digits04.safetensors'; // scripts/pretrain-backbone.sh
// Config fields that only change how outputs are decoded: redraw them at once, even paused.
const DECODE_FIELDS = ['nms_iou', 'score_threshold'];

let wasm = null; // the wasm-bindgen module, once loaded
let mnist = null; // Uint8Array of assets/mnist.bin

let wanted = null; // the latest state table from the main thread
let wantedSpec = null; // the spec JSON it resolves to
let viewWanted = { layer: '', example: 0 }; // what the per-layer views show
let viewDirty = false; // the views need a fresh probe (selection changed, new run, a single step)
const exports = []; // export requests, in order
let running = false;
let pendingSteps = 0;
let resetWanted = false;
let probeWanted = false;
let backendOverride = null; // 'cpu' after the GPU failed mid-run, until the backend setting changes

let pg = null; // the Playground
let twin = null; // transfer learning: the same model from scratch, trained beside pg
let backbone = null; // Uint8Array of the shipped backbone, once fetched
let attempted = null; // rebuild key of the last create() attempt (success or not)
let applied = null; // live config fields last given to the Playground
let summary = null; // the built model's summary()
let backendInfo = { backend: 'none', reason: 'starting' };
let run = 0; // increments on every (re)build; lets the page clear its charts
let step = 0;
let stepsPerCall = 1;
let evalExamples = EVAL_MIN;
let nextProbeAt = 0;
let nextViewAt = 0;
let nextOutputsAt = 0; // the task's outputs are redrawn between probes (8 images: cheap)
let pumping = false;
let outputsWanted = false; // decoding thresholds changed: redraw the outputs
let task = 'classify';
let inputDims = [1, 28, 28];

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
      wantedSpec = msg.spec;
      setView(msg.state.layer, msg.state.example);
      break;
    case 'view':
      setView(msg.layer, msg.example);
      break;
    case 'play':
      running = true;
      break;
    case 'pause':
      running = false;
      pendingSteps = 0;
      viewDirty = true; // the views show where training stopped
      probeWanted = true; // and so do the validation readouts and the outputs
      break;
    case 'step':
      running = false;
      pendingSteps += 1;
      break;
    case 'probe':
      probeWanted = true;
      viewDirty = true;
      break;
    case 'reset':
      resetWanted = true;
      break;
    case 'check':
      check(msg.id, msg.spec);
      return;
    case 'export':
      exports.push(msg.what);
      break;
    default:
      postError('worker', `unknown message type "${msg.type}"`);
      return;
  }
  if (msg.type === 'play' || msg.type === 'pause' || msg.type === 'step') postStatus();
  kick();
};

function setView(layer, example) {
  if (layer === viewWanted.layer && example === viewWanted.example) return;
  viewWanted = { layer, example };
  viewDirty = true;
}

/** check_spec for the layer editor: a pure function, so it does not wait for the loop. */
async function check(id, spec) {
  try {
    await loadWasm();
    post({ type: 'check-result', id, result: JSON.parse(wasm.check_spec(spec)) });
  } catch (err) {
    post({ type: 'check-result', id, error: messageOf(err) });
  }
}

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

function rebuildKey(state, spec) {
  return JSON.stringify({ spec, seed: state.seed, backend: backendOverride ?? state.backend });
}

/** The live config fields of a state, as the Playground takes them. */
function liveConfig(state) {
  const config = toConfig(state);
  return Object.fromEntries(LIVE_FIELDS.map((name) => [name, config[name]]));
}

/** The live fields that differ from what the Playground has (set_config gets only those). */
function liveChanges(state) {
  const live = liveConfig(state);
  return Object.fromEntries(Object.entries(live).filter(([name, value]) => applied?.[name] !== value));
}

/** Does one unit of work; returns true if it did any (the loop then looks again). */
async function tick() {
  if (!wanted) return false;
  if (resetWanted || rebuildKey(wanted, wantedSpec) !== attempted) {
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
  const changes = liveChanges(wanted);
  if (Object.keys(changes).length > 0) {
    applied = { ...applied, ...changes }; // even if it throws: do not retry the same values in a loop
    try {
      pg.set_config(JSON.stringify(changes));
      // the from-scratch twin trains every layer: it gets everything but the freeze list
      const { freeze: _frozen, ...rest } = changes;
      if (twin && Object.keys(rest).length > 0) twin.set_config(JSON.stringify(rest));
      if (DECODE_FIELDS.some((name) => name in changes)) outputsWanted = true;
    } catch (err) {
      postError(`could not apply ${Object.keys(changes).join(', ')}`, err);
    }
  }
  if (exports.length > 0) {
    await exportFile(exports.shift());
    return true;
  }
  if (pendingSteps > 0) {
    pendingSteps -= 1;
    await train(1);
    await probe();
    viewDirty = true;
    return true;
  }
  if (running) {
    await train(stepsPerCall);
    if (performance.now() >= nextProbeAt) await probe();
    else if (task !== 'classify' && performance.now() >= nextOutputsAt) await redrawOutputs();
    else if (performance.now() >= nextViewAt) await probeView();
    return true;
  }
  if (probeWanted) {
    await probe();
    return true; // messages may have arrived meanwhile: look again
  }
  if (outputsWanted) {
    await redrawOutputs();
    return true;
  }
  if (viewDirty) {
    await probeView();
    return true;
  }
  return false;
}

/** An error inside the loop: report it, stop playing, and fall back to the CPU if the GPU failed. */
async function recover(err) {
  const onGpu = pg !== null && backendInfo.backend === 'webgpu';
  outputsWanted = false;
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

let wasmLoading = null; // the one load of the module (check and rebuild may both ask at once)

function loadWasm() {
  wasmLoading ??= (async () => {
    const url = new URL('../pkg/cnn_playground.js', import.meta.url);
    try {
      const mod = await import(url.href);
      await mod.default();
      wasm = mod;
      return mod;
    } catch (err) {
      wasmLoading = null; // a later call may try again
      throw new Error(`could not load the wasm core from ${url.pathname} (${messageOf(err)}); run \`npm run build\``);
    }
  })();
  return wasmLoading;
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

async function loadBackbone() {
  if (backbone) return backbone;
  const url = new URL(BACKBONE_URL, import.meta.url);
  const response = await fetchOk(url, 'the pretrained backbone');
  backbone = new Uint8Array(await response.arrayBuffer());
  return backbone;
}

async function create(spec, config) {
  const pgNew = await wasm.Playground.create(spec, JSON.stringify(config), mnist);
  const info = JSON.parse(pgNew.backend());
  return { pgNew, info };
}

async function rebuild() {
  resetWanted = false;
  attempted = rebuildKey(wanted, wantedSpec);
  const state = wanted;
  const spec = wantedSpec;
  if (pg) {
    pg.free();
    pg = null;
  }
  if (twin) {
    twin.free();
    twin = null;
  }
  run += 1;
  step = 0;
  stepsPerCall = 1;
  evalExamples = EVAL_MIN;
  nextProbeAt = 0;
  nextOutputsAt = 0;
  nextViewAt = 0;
  summary = null;
  backendInfo = { backend: 'none', reason: 'building the model' };
  postStatus(true);

  try {
    await Promise.all([loadWasm(), loadMnist()]);
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
    const parsed = JSON.parse(spec);
    task = state.task;
    inputDims = parsed.input;
    let transfer = null;
    if (task === 'transfer') {
      // the fine-tuned run starts from the backbone; its twin from the same seed's fresh weights
      const bytes = await loadBackbone();
      transfer = { ...JSON.parse(built.pgNew.load_backbone(bytes)), source: new URL(BACKBONE_URL, import.meta.url).pathname };
      const twinConfig = { ...config, backend: built.info.backend === 'webgpu' ? config.backend : 'cpu', freeze: [] };
      twin = (await create(spec, twinConfig)).pgNew;
    }
    pg = built.pgNew;
    backendInfo = built.info;
    applied = liveConfig(state);
    outputsWanted = false;
    summary = JSON.parse(pg.summary());
    post({ type: 'model', run, summary, task, transfer });
    probeWanted = true;
    viewDirty = true;
  } catch (err) {
    pg = null;
    twin?.free();
    twin = null;
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
  report.twin = null;
  if (twin) {
    const r = JSON.parse(await twin.step(n));
    report.twin = { loss: r.loss, accuracy: r.accuracy };
  }
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

/** A typed Playground result, [header JSON, ...typed arrays], as {value, buffers}: each
 * {"$": i} in the header becomes the i-th array; buffers are theirs (fresh copies out of
 * wasm memory), for the transfer list. */
function unpack([header, ...arrays]) {
  const fill = (v) => {
    if (Array.isArray(v)) return v.map(fill);
    if (v === null || typeof v !== 'object') return v;
    if (typeof v.$ === 'number' && Object.keys(v).length === 1) return arrays[v.$];
    for (const key of Object.keys(v)) v[key] = fill(v[key]);
    return v;
  };
  return { value: fill(JSON.parse(header)), buffers: arrays.map((a) => a.buffer) };
}

async function probe() {
  probeWanted = false;
  outputsWanted = false;
  const t0 = performance.now();
  const evalStart = performance.now();
  const ev = JSON.parse(await pg.evaluate(evalExamples));
  const evalMs = performance.now() - evalStart;
  // Keep evaluation near EVAL_TARGET_MS (within EVAL_MIN..EVAL_MAX examples).
  const perExample = evalMs / Math.max(1, ev.examples);
  evalExamples = Math.max(EVAL_MIN, Math.min(EVAL_MAX, Math.round(EVAL_TARGET_MS / Math.max(perExample, 1e-3))));
  let twinEval = null;
  if (twin) {
    const t = JSON.parse(await twin.evaluate(ev.examples));
    twinEval = { val_loss: t.val_loss, val_accuracy: t.val_accuracy, metrics: t.metrics };
  }

  const hasConv = summary?.layers.some((l) => l.kind === 'conv2d');
  const f = hasConv ? unpack(await pg.filters()) : null;
  const filters = f?.value ?? null;
  const transfer = f?.buffers ?? [];
  let digits = null;
  let outputs = null;
  if (task === 'classify' && JSON.parse(wantedSpec).data?.source !== 'clutter') {
    digits = await probeDigits();
    transfer.push(digits.pixels.buffer, digits.labels.buffer, digits.preds.buffer, digits.confidence.buffer);
  } else {
    const o = unpack(await pg.outputs(PROBE_OUTPUTS));
    outputs = o.value;
    transfer.push(...o.buffers);
  }
  post(
    {
      type: 'probe-result',
      run,
      step,
      val_loss: ev.val_loss,
      val_accuracy: ev.val_accuracy,
      examples: ev.examples,
      metrics: ev.metrics,
      twin: twinEval,
      filters,
      digits,
      outputs,
    },
    transfer,
  );
  // Probing must not eat the training: at most ~20% of the time, and ~2.5 times a second.
  const took = performance.now() - t0;
  nextProbeAt = performance.now() + Math.max(MIN_PROBE_INTERVAL_MS, 4 * took);
}

/** MNIST classification: predictions for a spread of validation digits, with their pixels. */
async function probeDigits() {
  const p = unpack(await pg.predict(PROBE_DIGITS)).value;
  const count = new DataView(mnist.buffer, mnist.byteOffset).getUint32(4, true);
  const pixelsPer = 784;
  const pixels = new Uint8Array(p.indices.length * pixelsPer);
  p.indices.forEach((index, i) => {
    const start = MNIST_HEADER + count + index * pixelsPer;
    pixels.set(mnist.subarray(start, start + pixelsPer), i * pixelsPer);
  });
  return {
    pixels,
    labels: Uint8Array.from(p.labels),
    preds: Uint8Array.from(p.preds),
    confidence: p.confidence,
  };
}

/** Decodes the outputs again and redraws them, without evaluating: after an NMS or score
 * threshold change, and between probes while training (at most ~20% of the time). */
async function redrawOutputs() {
  outputsWanted = false;
  if (task === 'classify') return;
  const t0 = performance.now();
  const { value: outputs, buffers } = unpack(await pg.outputs(PROBE_OUTPUTS));
  post({ type: 'outputs-result', run, step, outputs }, buffers);
  nextOutputsAt = performance.now() + Math.max(MIN_OUTPUTS_INTERVAL_MS, 4 * (performance.now() - t0));
}

/** The layer the views show: the one asked for if the model has it, else the first conv layer. */
function viewedLayer() {
  const layers = summary?.layers ?? [];
  return (
    layers.find((l) => l.name === viewWanted.layer) ??
    layers.find((l) => l.kind === 'conv2d') ??
    layers[0] ??
    null
  );
}

/**
 * The per-layer views of the chosen layer: its activation for one validation example, its
 * kernels (conv2d), the statistics of its parameters and, for batch norm, the running
 * statistics. Methods this wasm build lacks are listed in `missing`, not thrown. At most
 * about once a second while training, and at once when the choice changes.
 */
async function probeView() {
  viewDirty = false;
  const t0 = performance.now();
  try {
    await postView(viewedLayer());
  } catch (err) {
    // the views are a side show: report, and keep training
    postError('the layer views', err);
  }
  nextViewAt = performance.now() + Math.max(MIN_VIEW_INTERVAL_MS, 5 * (performance.now() - t0));
}

async function postView(layer) {
  if (!layer) return;
  const missing = typeof pg.layer_view === 'function' ? [] : ['layer_view'];
  const result = {
    type: 'view-result',
    run,
    step,
    layer: layer.name,
    kind: layer.kind,
    example: viewWanted.example,
    input: inputDims,
    label: null,
    image: null,
    activation: null,
    filters: null,
    weights: null,
    bn: null,
    missing,
  };
  let transfer = [];
  if (missing.length === 0) {
    // everything the views show, in one call (one GPU round trip)
    const { value: v, buffers } = unpack(await pg.layer_view(layer.name, viewWanted.example));
    transfer = buffers;
    result.label = v.label;
    result.image = v.image;
    result.activation = v.activation;
    result.filters = v.filters;
    result.weights = { params: v.params, all: v.all };
    result.bn = v.bn;
  }
  post(result, transfer);
}

/** Exports: weights.safetensors (bytes) and model.py (text), handed to the page to download. */
async function exportFile(what) {
  const method = { weights: 'export_weights', model_py: 'export_model_py' }[what];
  if (!method) {
    postError('export', `unknown export "${what}"`);
    return;
  }
  if (typeof pg[method] !== 'function') {
    postError('export', `this build of the wasm core has no ${method}() yet`);
    return;
  }
  let data;
  try {
    data = await pg[method]();
  } catch (err) {
    postError(`could not export ${EXPORT_FILES[what]}`, err);
    return;
  }
  // a copy: never transfer (detach) a buffer that might be the wasm module's memory
  const payload = data instanceof Uint8Array ? data.slice() : String(data);
  post({ type: 'export-result', what, filename: EXPORT_FILES[what], data: payload }, payload instanceof Uint8Array ? [payload.buffer] : []);
}
