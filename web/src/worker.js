// The training worker: owns the wasm Playground, so the main thread only draws.
//
// Protocol (plain messages; bulk data as transferable typed arrays):
//   main -> worker  {type: 'configure', state, spec, twin, instruments}
//                                    the full state table (see state.js) and the spec JSON it
//                                    resolves to (preset + arch); twin: {state, spec} | null,
//                                    run B (state.js twinState and its spec, resolved by the
//                                    main thread), built and trained beside A in lockstep from
//                                    the same seed; instruments: {probes: [{name, options}],
//                                    every} | null, the chapter's probes (docs/chapters.md)
//                   {type: 'play'} {type: 'pause'} {type: 'step'} {type: 'probe'} {type: 'reset'}
//                   {type: 'view', layer, example}    what the per-layer views show
//                   {type: 'check', id, spec}         validate a spec for the layer editor
//                   {type: 'export', what: 'weights' | 'model_py'}
//   worker -> main  {type: 'report', kind: 'status', run, backend, reason, running, step, building}
//                   {type: 'report', kind: 'train', run, step, loss, penalty, accuracy, phase,
//                                    diverged_at, ms_per_step, steps_per_call}
//                                    parts: {term: loss} (tasks with several loss terms),
//                                    twin: run B's {step, loss, penalty, accuracy, parts, phase,
//                                    diverged_at} | null (the same call's steps)
//                   {type: 'model', run, summary, task, transfer: {loaded, skipped, source} | null,
//                                    twin: {summary, transfer} | null}
//                                                     the built models' summary() (layers, totals)
//                   {type: 'probe-result', run, step, val_loss, val_accuracy, examples, metrics,
//                                    twin: run B's {val_loss, val_accuracy, examples, metrics,
//                                          filters, digits, outputs} (as A's, same examples) | null,
//                                    filters: {shape, data: Float32Array} | null,
//                                    digits: {pixels: Uint8Array (k·784), labels, preds: Uint8Array,
//                                             confidence: Float32Array} | null (MNIST classification),
//                                    outputs: Playground.outputs(k), unpacked | null (every other task)}
//                   {type: 'instruments', run, step, a: {probe: header with arrays in place},
//                                    b: {...} | null, errors: {probe: {a?: message, b?: message}}}
//                                    the chapter's probes (Playground.instrument) for A and B,
//                                    every instruments.every steps and at most ~once a second,
//                                    and on pause / single step / a new model; never every step
//                   {type: 'outputs-result', run, step, outputs, twin: outputs | null}
//                                                     redrawn outputs (no evaluation)
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
//                   {type: 'kinds', kinds: layer_kinds() | null, error?}  once, as the module loads
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
const MIN_INSTRUMENTS_INTERVAL_MS = 1000; // a chapter's probes at most about once a second
const EXPORT_FILES = { weights: 'weights.safetensors', model_py: 'model.py' };
const PROBE_OUTPUTS = 8; // validation examples whose decoded outputs are drawn
const BACKBONE_URL = '../assets/backbone-digits04.safetensors'; // scripts/pretrain-backbone.sh
// Config fields that only change how outputs are decoded: redraw them at once, even paused.
const DECODE_FIELDS = ['nms_iou', 'score_threshold'];

let wasm = null; // the wasm-bindgen module, once loaded
let mnist = null; // Uint8Array of assets/mnist.bin
let backbone = null; // Uint8Array of the shipped backbone, once fetched
let pumping = false;

/** What the main thread wants: messages only change this; the loop does it. */
const wanted = {
  state: null, // the latest state table from the main thread
  spec: null, // the spec JSON it resolves to
  twin: null, // run B: {state, spec} | null
  instruments: null, // the chapter's probes: {probes: [{name, options}], every} | null
  instrumentsDirty: false, // the instruments need a fresh probe (pause, single step, new set)
  view: { layer: '', example: 0 }, // what the per-layer views show
  viewDirty: false, // the views need a fresh probe (selection changed, new run, a single step)
  exports: [], // export requests, in order
  running: false,
  pendingSteps: 0,
  reset: false,
  probe: false,
  outputs: false, // decoding thresholds changed: redraw the outputs
  backendOverride: null, // 'cpu' after the GPU failed mid-run, until the backend setting changes
};

/** The running session: one model build, replaced whole by the next (re)build. */
function newSession(run, key, reason) {
  return {
    key, // rebuild key of this session's create() attempt (success or not)
    pg: null, // the Playground
    twin: null, // run B's Playground (wanted.twin), trained beside pg in lockstep
    summary: null, // the built model's summary()
    twinSummary: null, // run B's
    backendInfo: { backend: 'none', reason },
    applied: null, // live config fields last given to the Playground
    appliedTwin: null, // and to run B's
    run, // increments on every (re)build; lets the page clear its charts
    step: 0,
    stepsPerCall: 1,
    evalExamples: EVAL_MIN,
    nextProbeAt: 0,
    nextViewAt: 0,
    nextOutputsAt: 0, // the task's outputs are redrawn between probes (8 images: cheap)
    nextInstrumentsAt: 0,
    instrumentsStep: -Infinity, // the step of the last instruments probe
    instrumentsMissing: false, // this wasm build has no Playground.instrument
    task: 'classify',
    inputDims: [1, 28, 28],
  };
}

let session = newSession(0, null, 'starting');

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
    run: session.run,
    backend: session.backendInfo.backend,
    reason: session.backendInfo.reason,
    running: wanted.running,
    step: session.step,
    building,
    ready: session.pg !== null,
  });
}

// Nothing escapes silently: anything thrown outside the loop reaches the page too.
self.addEventListener('error', (event) => postError('worker', event.error ?? event.message));
self.addEventListener('unhandledrejection', (event) => postError('worker', event.reason));

self.onmessage = (event) => {
  const msg = event.data ?? {};
  switch (msg.type) {
    case 'configure':
      if (wanted.state && msg.state.backend !== wanted.state.backend) wanted.backendOverride = null;
      wanted.state = msg.state;
      wanted.spec = msg.spec;
      wanted.twin = msg.twin ?? null;
      if (JSON.stringify(msg.instruments ?? null) !== JSON.stringify(wanted.instruments)) wanted.instrumentsDirty = true;
      wanted.instruments = msg.instruments ?? null;
      setView(msg.state.layer, msg.state.example);
      break;
    case 'view':
      setView(msg.layer, msg.example);
      break;
    case 'play':
      wanted.running = true;
      break;
    case 'pause':
      wanted.running = false;
      wanted.pendingSteps = 0;
      wanted.viewDirty = true; // the views show where training stopped
      wanted.probe = true; // and so do the validation readouts and the outputs
      wanted.instrumentsDirty = true; // and the chapter's instruments
      break;
    case 'step':
      wanted.running = false;
      wanted.pendingSteps += 1;
      break;
    case 'probe':
      wanted.probe = true;
      wanted.viewDirty = true;
      wanted.instrumentsDirty = true;
      break;
    case 'reset':
      wanted.reset = true;
      break;
    case 'check':
      check(msg.id, msg.spec);
      return;
    case 'export':
      wanted.exports.push(msg.what);
      break;
    default:
      postError('worker', `unknown message type "${msg.type}"`);
      return;
  }
  if (msg.type === 'play' || msg.type === 'pause' || msg.type === 'step') postStatus();
  kick();
};

function setView(layer, example) {
  if (layer === wanted.view.layer && example === wanted.view.example) return;
  wanted.view = { layer, example };
  wanted.viewDirty = true;
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

/** Does this run start from the shipped backbone (transfer, not from scratch)? */
function usesBackbone(state) {
  return state.task === 'transfer' && state.backbone !== 'scratch';
}

/** What needs a new pair of models when it changes: A's spec, seed, backend and starting
 * weights, and whether B runs and with which spec and starting weights (twins restart
 * together, so that they stay in lockstep from step 0). */
function rebuildKey() {
  const { state, spec, twin } = wanted;
  return JSON.stringify({
    spec,
    seed: state.seed,
    backend: wanted.backendOverride ?? state.backend,
    backbone: usesBackbone(state),
    twin: twin ? { spec: twin.spec, backbone: usesBackbone(twin.state) } : null,
  });
}

/** The live config fields of a state, as the Playground takes them. */
function liveConfig(state) {
  const config = toConfig(state);
  return Object.fromEntries(LIVE_FIELDS.map((name) => [name, config[name]]));
}

/** The live fields that differ from what a Playground has (set_config gets only those). */
function liveChanges(state, applied) {
  const live = liveConfig(state);
  return Object.fromEntries(Object.entries(live).filter(([name, value]) => applied?.[name] !== value));
}

/** Gives run A (key 'applied') or B ('appliedTwin') the live fields that changed. */
function applyLive(pg, key, state, what) {
  const changes = liveChanges(state, session[key]);
  if (Object.keys(changes).length === 0) return;
  session[key] = { ...session[key], ...changes }; // even if it throws: do not retry the same values in a loop
  try {
    pg.set_config(JSON.stringify(changes));
    if (DECODE_FIELDS.some((name) => name in changes)) wanted.outputs = true;
  } catch (err) {
    postError(`could not apply ${Object.keys(changes).join(', ')} to ${what}`, err);
  }
}

/** Does one unit of work; returns true if it did any (the loop then looks again). */
async function tick() {
  if (!wanted.state) return false;
  if (wanted.reset || rebuildKey() !== session.key) {
    await rebuild();
    return true;
  }
  const { pg, twin } = session;
  if (!pg) {
    // The last build failed and nothing that could fix it has changed.
    if (wanted.running || wanted.pendingSteps > 0) {
      wanted.running = false;
      wanted.pendingSteps = 0;
      postStatus();
      postError('cannot train', 'the model did not build; fix the settings above or press reset');
    }
    return false;
  }
  applyLive(pg, 'applied', wanted.state, 'run A');
  if (twin && wanted.twin) applyLive(twin, 'appliedTwin', wanted.twin.state, 'run B');
  if (wanted.exports.length > 0) {
    await exportFile(wanted.exports.shift());
    return true;
  }
  if (wanted.pendingSteps > 0) {
    wanted.pendingSteps -= 1;
    await train(1);
    await probe();
    wanted.viewDirty = true;
    wanted.instrumentsDirty = true;
    return true;
  }
  if (wanted.running) {
    await train(session.stepsPerCall);
    if (performance.now() >= session.nextProbeAt) await probe();
    else if (instrumentsDue()) await runInstruments();
    else if (session.task !== 'classify' && performance.now() >= session.nextOutputsAt) await redrawOutputs();
    else if (performance.now() >= session.nextViewAt) await probeView();
    return true;
  }
  if (wanted.probe) {
    await probe();
    return true; // messages may have arrived meanwhile: look again
  }
  if (wanted.outputs) {
    await redrawOutputs();
    return true;
  }
  if (wanted.instrumentsDirty && wanted.instruments) {
    await runInstruments();
    return true;
  }
  if (wanted.viewDirty) {
    await probeView();
    return true;
  }
  return false;
}

/** An error inside the loop: report it, stop playing, and fall back to the CPU if the GPU failed. */
async function recover(err) {
  const onGpu = session.pg !== null && session.backendInfo.backend === 'webgpu';
  wanted.outputs = false;
  wanted.running = false;
  wanted.pendingSteps = 0;
  if (onGpu) {
    postError('training on WebGPU failed; switched to the CPU backend and restarted', err, 'session');
    wanted.backendOverride = 'cpu';
    wanted.reset = true;
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

// The layer kinds (the Rust table) go to the page once, as soon as the module is loaded:
// the page builds its layer editor from them, then reads the link. Without the module the
// page starts all the same, and the first build says why it cannot.
loadWasm()
  .then((mod) => JSON.parse(mod.layer_kinds()))
  .then(
    (kinds) => post({ type: 'kinds', kinds }),
    (err) => post({ type: 'kinds', kinds: null, error: wasm ? `the wasm core gave no layer kinds: ${messageOf(err)}` : null }),
  );

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

/** Loads the shipped backbone into a transfer run; what it loaded (null when not transfer). */
async function startingWeights(pg, state) {
  if (!usesBackbone(state)) return null;
  const bytes = await loadBackbone();
  return { ...JSON.parse(pg.load_backbone(bytes)), source: new URL(BACKBONE_URL, import.meta.url).pathname };
}

async function rebuild() {
  wanted.reset = false;
  const { state, spec, twin } = wanted;
  session.pg?.free();
  session.twin?.free();
  session = newSession(session.run + 1, rebuildKey(), 'building the model');
  postStatus(true);

  try {
    await Promise.all([loadWasm(), loadMnist()]);
    const config = toConfig(state);
    if (wanted.backendOverride) config.backend = wanted.backendOverride;
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
    session.task = state.task;
    session.inputDims = parsed.input;
    session.pg = built.pgNew;
    session.backendInfo = built.info;
    const transfer = await startingWeights(session.pg, state);
    let twinInfo = null;
    if (twin) {
      // run B: the same seed (same initial weights and batches), on the backend A got
      const twinConfig = { ...toConfig(twin.state), backend: built.info.backend === 'webgpu' ? config.backend : 'cpu' };
      try {
        session.twin = (await create(twin.spec, twinConfig)).pgNew;
        const twinTransfer = await startingWeights(session.twin, twin.state);
        session.twinSummary = JSON.parse(session.twin.summary());
        session.appliedTwin = liveConfig(twin.state);
        twinInfo = { summary: session.twinSummary, transfer: twinTransfer };
      } catch (err) {
        session.twin?.free();
        session.twin = null;
        postError('could not build run B (the twin); training run A alone', err);
      }
    }
    session.applied = liveConfig(state);
    wanted.outputs = false;
    session.summary = JSON.parse(session.pg.summary());
    post({ type: 'model', run: session.run, summary: session.summary, task: session.task, transfer, twin: twinInfo });
    wanted.probe = true;
    wanted.viewDirty = true;
    wanted.instrumentsDirty = true;
  } catch (err) {
    session.pg?.free();
    session.pg = null;
    session.twin?.free();
    session.twin = null;
    wanted.running = false;
    wanted.pendingSteps = 0;
    session.backendInfo = { backend: 'none', reason: 'the model did not build' };
    postError('could not build the model', err);
  }
  postStatus();
}

// ---------------------------------------------------------------------------------------
// Training and probing.

async function train(n) {
  const t0 = performance.now();
  const report = JSON.parse(await session.pg.step(n));
  report.twin = null;
  if (session.twin) {
    // lockstep: B trains the same number of steps in the same call
    const r = JSON.parse(await session.twin.step(n));
    report.twin = { step: r.step, loss: r.loss, penalty: r.penalty, accuracy: r.accuracy, parts: r.parts, phase: r.phase, diverged_at: r.diverged_at };
  }
  const perStep = (performance.now() - t0) / n;
  session.step = report.step;
  // Next call: ~TARGET_CALL_MS of work, growing at most 2x per call.
  const ideal = Math.round(TARGET_CALL_MS / Math.max(perStep, 0.05));
  session.stepsPerCall = Math.max(1, Math.min(MAX_STEPS_PER_CALL, ideal, session.stepsPerCall * 2));
  post({ type: 'report', kind: 'train', run: session.run, ...report, steps_per_call: n });
  if (report.phase === 'diverged') {
    wanted.running = false;
    wanted.pendingSteps = 0;
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
  wanted.probe = false;
  wanted.outputs = false;
  const t0 = performance.now();
  const evalStart = performance.now();
  const ev = JSON.parse(await session.pg.evaluate(session.evalExamples));
  const evalMs = performance.now() - evalStart;
  // Keep evaluation near EVAL_TARGET_MS (within EVAL_MIN..EVAL_MAX examples).
  const perExample = evalMs / Math.max(1, ev.examples);
  session.evalExamples = Math.max(EVAL_MIN, Math.min(EVAL_MAX, Math.round(EVAL_TARGET_MS / Math.max(perExample, 1e-3))));
  const transfer = [];
  const a = await probeSide(session.pg, session.summary, transfer);
  let twinEval = null;
  if (session.twin) {
    // B on the same validation examples
    const t = JSON.parse(await session.twin.evaluate(ev.examples));
    const side = await probeSide(session.twin, session.twinSummary, transfer);
    twinEval = { val_loss: t.val_loss, val_accuracy: t.val_accuracy, examples: t.examples, metrics: t.metrics, ...side };
  }
  const { filters, digits, outputs } = a;
  post(
    {
      type: 'probe-result',
      run: session.run,
      step: session.step,
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
  session.nextProbeAt = performance.now() + Math.max(MIN_PROBE_INTERVAL_MS, 4 * took);
}

/** One run's drawn probes: first-layer filters, and the validation digits (MNIST
 * classification) or the task's outputs; their buffers are added to `transfer`. */
async function probeSide(pg, summary, transfer) {
  const hasConv = summary?.layers.some((l) => l.kind === 'conv2d');
  const f = hasConv ? unpack(await pg.filters()) : null;
  if (f) transfer.push(...f.buffers);
  let digits = null;
  let outputs = null;
  if (session.task === 'classify' && JSON.parse(wanted.spec).data?.source !== 'clutter') {
    digits = await probeDigits(pg);
    transfer.push(digits.pixels.buffer, digits.labels.buffer, digits.preds.buffer, digits.confidence.buffer);
  } else {
    const o = unpack(await pg.outputs(PROBE_OUTPUTS));
    outputs = o.value;
    transfer.push(...o.buffers);
  }
  return { filters: f?.value ?? null, digits, outputs };
}

/** MNIST classification: predictions for a spread of validation digits, with their pixels. */
async function probeDigits(pg) {
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
  wanted.outputs = false;
  if (session.task === 'classify') return;
  const t0 = performance.now();
  const { value: outputs, buffers } = unpack(await session.pg.outputs(PROBE_OUTPUTS));
  let twin = null;
  if (session.twin) {
    const t = unpack(await session.twin.outputs(PROBE_OUTPUTS));
    twin = t.value;
    buffers.push(...t.buffers);
  }
  post({ type: 'outputs-result', run: session.run, step: session.step, outputs, twin }, buffers);
  session.nextOutputsAt = performance.now() + Math.max(MIN_OUTPUTS_INTERVAL_MS, 4 * (performance.now() - t0));
}

/** Are the chapter's probes due while training: probe_every steps on, and ~1 s apart? */
function instrumentsDue() {
  const inst = wanted.instruments;
  if (!inst || inst.probes.length === 0 || session.instrumentsMissing) return false;
  return session.step - session.instrumentsStep >= inst.every && performance.now() >= session.nextInstrumentsAt;
}

/**
 * The chapter's probes (Playground.instrument, one GPU round trip each) on the fixed probe
 * batch, for A and for B: posted as one 'instruments' message, the arrays transferred. A
 * probe that fails (e.g. no upsampling layer for `checkerboard`) is named in `errors` and
 * the others still run.
 */
async function runInstruments() {
  wanted.instrumentsDirty = false;
  const inst = wanted.instruments;
  if (!inst || inst.probes.length === 0 || !session.pg) return;
  if (typeof session.pg.instrument !== 'function') {
    if (!session.instrumentsMissing) postError('the instruments', 'this build of the wasm core has no Playground.instrument() yet');
    session.instrumentsMissing = true;
    return;
  }
  const t0 = performance.now();
  const buffers = [];
  const errors = {};
  const side = async (pg, key) => {
    const out = {};
    for (const { name, options } of inst.probes) {
      try {
        const { value, buffers: b } = unpack(await pg.instrument(name, JSON.stringify(options ?? {})));
        out[name] = value;
        buffers.push(...b);
      } catch (err) {
        errors[name] = { ...errors[name], [key]: messageOf(err) };
      }
    }
    return out;
  };
  const a = await side(session.pg, 'a');
  const b = session.twin ? await side(session.twin, 'b') : null;
  session.instrumentsStep = session.step;
  post({ type: 'instruments', run: session.run, step: session.step, a, b, errors }, buffers);
  session.nextInstrumentsAt = performance.now() + Math.max(MIN_INSTRUMENTS_INTERVAL_MS, 4 * (performance.now() - t0));
}

/** The layer the views show: the one asked for if the model has it, else the first conv layer. */
function viewedLayer() {
  const layers = session.summary?.layers ?? [];
  return (
    layers.find((l) => l.name === wanted.view.layer) ??
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
  wanted.viewDirty = false;
  const t0 = performance.now();
  try {
    await postView(viewedLayer());
  } catch (err) {
    // the views are a side show: report, and keep training
    postError('the layer views', err);
  }
  session.nextViewAt = performance.now() + Math.max(MIN_VIEW_INTERVAL_MS, 5 * (performance.now() - t0));
}

async function postView(layer) {
  if (!layer) return;
  const missing = typeof session.pg.layer_view === 'function' ? [] : ['layer_view'];
  const result = {
    type: 'view-result',
    run: session.run,
    step: session.step,
    layer: layer.name,
    kind: layer.kind,
    example: wanted.view.example,
    input: session.inputDims,
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
    const { value: v, buffers } = unpack(await session.pg.layer_view(layer.name, wanted.view.example));
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
  if (typeof session.pg[method] !== 'function') {
    postError('export', `this build of the wasm core has no ${method}() yet`);
    return;
  }
  let data;
  try {
    data = await session.pg[method]();
  } catch (err) {
    postError(`could not export ${EXPORT_FILES[what]}`, err);
    return;
  }
  // a copy: never transfer (detach) a buffer that might be the wasm module's memory
  const payload = data instanceof Uint8Array ? data.slice() : String(data);
  post({ type: 'export-result', what, filename: EXPORT_FILES[what], data: payload }, payload instanceof Uint8Array ? [payload.buffer] : []);
}
