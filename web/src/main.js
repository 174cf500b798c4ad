// The main thread: holds the state table (mirrored in the URL hash and, through
// ui/form.js, in the form), sends commands to the training worker and draws what comes
// back. It never trains, and every draw is cheap (a few text nodes, uPlot redraws, small
// canvases, once per frame). It starts when the worker has sent the layer kinds.
//
// The model is a spec: the preset's, with the layer list of `arch` when it was edited. The
// architecture toggles and the layer editor turn the running spec into a new one (checked
// by the Rust side's check_spec in the worker), which becomes `arch` and a new model.
import { FIELDS, TRANSFER_TWIN, checkTwinTask, chapterState, defaults, fromHash, parseTwin, toHash, twinState } from './state.js';
import { chapterMap, chapterProbes, chapterProblems, fillAnswer } from './chapters.js';
import { ChapterView } from './ui/chapter.js';
import { Instruments } from './ui/instruments.js';
import { TwinPanel, makeTwinControl } from './ui/twins.js';
import {
  archFor,
  batchNormState,
  dropoutState,
  headState,
  inceptionState,
  setKinds,
  specFor,
  withBatchNorm,
  withDropout,
  withHead,
  withInception,
} from './arch.js';
import { TASKS, defaultPreset, fmtMetric, freezable, freezeList, freezeText, taskSpec } from './tasks.js';
import { CurveChart } from './ui/charts.js';
import { OutputView } from './ui/outputs.js';
import { FilterView } from './ui/filters.js';
import { DigitView } from './ui/digits.js';
import { LayerEditor, fmtTotals } from './ui/editor.js';
import { bindForm } from './ui/form.js';
import { stuckAtChance } from './labels.js';
import { LayerViews } from './ui/layerview.js';

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

// ---------------------------------------------------------------------------------------
// Errors: every problem lands in [data-testid=error], keyed by where it came from, so a
// fixed input clears its own message and nothing else.

const errors = new Map();

function setError(source, message) {
  if (message) errors.set(source, message);
  else errors.delete(source);
  const box = $('error');
  const list = box.querySelector('.error-list');
  list.replaceChildren(
    ...[...errors.values()].map((text) => {
      const li = document.createElement('li');
      li.textContent = text;
      return li;
    }),
  );
  box.hidden = errors.size === 0;
}

$('error')
  .querySelector('.error-dismiss')
  .addEventListener('click', () => {
    for (const key of [...errors.keys()]) if (!key.startsWith('field:')) errors.delete(key);
    setError('', null);
  });

window.addEventListener('error', (e) => {
  // Chromium reports a benign "ResizeObserver loop ..." when layout settles over two
  // frames; it is not a failure of the page.
  if (/^ResizeObserver loop/.test(e.message)) return;
  setError('page', `page error: ${e.message}`);
});
window.addEventListener('unhandledrejection', (e) =>
  setError('page', `page error: ${e.reason instanceof Error ? e.reason.message : String(e.reason)}`),
);

/** The problems of a check_spec result, as one line. */
function problems(result) {
  return result.errors.map((e) => e.message).join('; ');
}

// ---------------------------------------------------------------------------------------
// State: one table, mirrored in the URL hash and the form.

let state;
let preset = null; // the preset's spec
let model = null; // the spec that runs: the preset, or its layers replaced by `arch`
let modelSeq = 0; // the latest model change; an older one that finishes late is dropped
let archBusy = false;
let layerFromLink = false; // the viewed layer came from a link: say so if the model lacks it
let form = null; // the settings form (ui/form.js), bound at start

function writeHash() {
  history.replaceState(null, '', toHash(state));
}

function loadHash() {
  const parsed = fromHash(location.hash, { chapters });
  state = parsed.state;
  setError(
    'hash',
    parsed.errors.length
      ? `The link's settings had problems, so defaults were used for them: ${parsed.errors.join('; ')}.`
      : null,
  );
  setError('arch', null);
  setError('layer', null);
  layerFromLink = state.layer !== '';
  writeHash();
  for (const name of Object.keys(FIELDS)) setError(`field:${name}`, null);
  form.fill();
  applyViewSettings();
  showChapter();
  resolveModel();
}

/** Applies changed fields: a new task brings its first preset, a new preset its own
 * layers (both a new model); the rest goes to the worker as it is. */
function setState(changes) {
  if ('chapter' in changes && changes.chapter !== state.chapter) {
    openChapter(changes.chapter);
    return;
  }
  state = { ...state, ...changes };
  const newModel = 'task' in changes || 'preset' in changes;
  if ('task' in changes) {
    state.preset = defaultPreset(state.task);
    // twins share the task: a new task starts without B (transfer with its from-scratch twin)
    state.twin = state.task === 'transfer' ? TRANSFER_TWIN : '';
  }
  if ('twin' in changes || 'preset' in changes) {
    const problem = checkTwinTask(state);
    setError('twin', problem);
    if (problem) state.twin = '';
  }
  if (newModel) {
    state.arch = '';
    setError('arch', null);
    setError('freeze', null);
    form.fill();
  }
  writeHash();
  form.sync();
  if ('twin' in changes || newModel) form.fill();
  applyViewSettings();
  if (newModel) resolveModel();
  else sendConfigure();
  if ('twin' in changes) updateChapterLabels();
}

// ---------------------------------------------------------------------------------------
// Chapters (web/chapters/index.json): the picker, the chapter panel and its instruments.

let chapters = {}; // slug -> chapter object
let chapterView = null;
let instruments = null; // the open chapter's Instruments, or null
let shownChapter = null; // the slug the panel shows

async function loadChapters() {
  const url = new URL('../chapters/index.json', import.meta.url);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const list = await response.json();
    const problems = list.flatMap(chapterProblems);
    if (problems.length) setError('chapters', `Some chapters cannot be shown: ${problems.join('; ')}`);
    return list;
  } catch (err) {
    setError('chapters', `could not load the chapters from ${url.pathname} (${err.message}); run \`npm run build\``);
    return [];
  }
}

/** Opens a chapter from the picker: its run A's state and twin (backend kept); '' = none. */
function openChapter(slug) {
  setError('chapter', null);
  if (!slug) {
    state = { ...state, chapter: '' };
  } else {
    const opened = chapterState(chapters[slug], { ...defaults(), backend: state.backend });
    state = opened.state;
    setError('chapter', opened.errors.length ? `chapter ${slug}: ${opened.errors.join('; ')}` : null);
  }
  writeHash();
  form.fill();
  showChapter();
  resolveModel();
}

/** The labels of A and B: the chapter's runs while the twin is the chapter's own. */
function runLabels() {
  const chapter = chapters[state.chapter];
  const b = twinState(state) ? `twin (${state.twin})` : null;
  if (!chapter) return { a: 'A', b };
  const own = chapterState(chapter).state.twin === state.twin;
  const byId = new Map(chapter.runs.map((r) => [r.id, r]));
  const [ia, ib] = chapter.twins ?? [];
  return {
    a: byId.get(ia)?.label ?? 'A',
    b: b && own ? (byId.get(ib)?.label ?? b) : b,
  };
}

function updateChapterLabels() {
  if (shownChapter) chapterView.setLabels(runLabels());
  twinPanel.setRun(Boolean(twinState(state)), runLabels().b ?? 'off', state.task);
}

/** The panel for state.chapter (made anew when the chapter changes). */
function showChapter() {
  const chapter = chapters[state.chapter] ?? null;
  updateChapterLabels();
  if ((chapter?.slug ?? null) === shownChapter) return;
  shownChapter = chapter?.slug ?? null;
  const box = chapterView.show(chapter, { labels: runLabels() });
  instruments = chapter
    ? new Instruments(box, chapter.instruments ?? [], {
        labels: runLabels(),
        state: () => state,
        metricKey: () => (state.task === 'classify' || state.task === 'transfer' ? 'accuracy' : TASKS[state.task].headline.key),
      })
    : null;
  latestEval = { a: null, b: null };
}

/** What the worker's instruments message carries: the chapter's probes, or null. */
function instrumentsWanted() {
  const chapter = chapters[state.chapter];
  if (!chapter || !instruments) return null;
  return { probes: chapterProbes(chapter), every: Math.max(1, chapter.probe_every ?? 50) };
}

let latestEval = { a: null, b: null }; // the latest evaluations of A and B, for the answer

function drawAnswer() {
  const chapter = chapters[state.chapter];
  if (!chapter || !instruments) return;
  const labels = runLabels();
  const val = (p) => (p ? { accuracy: p.val_accuracy, loss: p.val_loss, ...(p.metrics ?? {}) } : {});
  chapterView.setAnswer(
    fillAnswer(chapter.answer, {
      a: { label: labels.a, probes: instruments.latest.a, val: val(latestEval.a) },
      b: labels.b ? { label: labels.b, probes: instruments.latest.b, val: val(latestEval.b) } : null,
    }),
  );
}

// ---------------------------------------------------------------------------------------
// The model: preset + arch, the toggles, the layer editor.

const presetCache = new Map();

function loadPreset(name) {
  if (!presetCache.has(name)) {
    const url = new URL(`../presets/${encodeURIComponent(name)}.json`, import.meta.url);
    const loading = fetch(url).then(async (response) => {
      if (!response.ok) throw new Error(`could not fetch the model preset "${name}" from ${url.pathname}: HTTP ${response.status}`);
      return response.json();
    });
    loading.catch(() => presetCache.delete(name));
    presetCache.set(name, loading);
  }
  return presetCache.get(name);
}

/** The spec of the state (preset + arch), checked when it comes from a link; then configure. */
async function resolveModel() {
  const seq = ++modelSeq;
  setArchBusy(true);
  try {
    const base = await loadPreset(state.preset);
    if (seq !== modelSeq) return;
    const spec = specFor(base, state.arch);
    if (state.arch) {
      const result = await checkSpec(spec);
      if (seq !== modelSeq) return;
      if (!result.ok) {
        setError(
          'arch',
          `architecture (arch): the link's layers do not validate, so the ${state.preset} preset's layers are used ` +
            `(the link's layers are in the layer editor, to fix): ${problems(result)}`,
        );
        state = { ...state, arch: '' };
        writeHash();
        install(base, base);
        editor.setDraft(spec.layers);
        return;
      }
    }
    install(base, spec);
  } catch (err) {
    if (seq === modelSeq) setError('model', `could not load the model: ${err.message}`);
  } finally {
    if (seq === modelSeq) setArchBusy(false);
  }
}

function install(base, spec) {
  setError('model', null);
  preset = base;
  model = spec;
  $('arch-description').textContent = state.arch
    ? `Edited from the ${state.preset} preset (the layers are in the link).`
    : `${state.preset}: ${base.description ?? ''}`;
  editor.setLayers(spec.layers);
  sendConfigure();
}

/** Makes `spec` the model (a new run) if check_spec accepts it; says why not otherwise. */
async function changeArch(spec, what) {
  if (!model || archBusy) return;
  const seq = ++modelSeq;
  setArchBusy(true);
  try {
    const result = await checkSpec(spec);
    if (seq !== modelSeq) return;
    if (!result.ok) {
      setError('arch-change', `${what} gives a model that does not validate: ${problems(result)}`);
      return;
    }
    setError('arch-change', null);
    setError('arch', null);
    state = { ...state, arch: archFor(preset, spec) };
    writeHash();
    install(preset, spec);
  } catch (err) {
    if (seq === modelSeq) setError('arch-change', `could not check the new architecture: ${err.message}`);
  } finally {
    if (seq === modelSeq) setArchBusy(false);
  }
}

function setArchBusy(busy) {
  archBusy = busy;
  editor.setBusy(busy);
  renderToggles();
}

/** The toggles read their state from the running spec; while a change is checked and
 * built they keep what the reader clicked, disabled. */
function renderToggles() {
  if (archBusy) {
    for (const id of ['arch-bn', 'arch-inception', 'arch-dropout', 'arch-head']) $(id).disabled = true;
    return;
  }
  const bn = model ? batchNormState(model) : 'none';
  const inception = model ? inceptionState(model) : 'none';
  const dropout = model ? dropoutState(model) : 'none';
  const head = model ? headState(model) : 'other';
  const box = (testid, on, disabled, mixed = false) => {
    const el = $(testid);
    el.checked = on;
    el.indeterminate = mixed;
    el.disabled = disabled;
  };
  box('arch-bn', bn === 'on', bn === 'none', bn === 'mixed');
  box('arch-inception', inception === 'on', inception === 'none');
  box('arch-dropout', dropout === 'on', dropout === 'none');
  $('arch-head').value = head;
  $('arch-head').disabled = head === 'other';
  $('arch-inception').title =
    inception === 'none'
      ? 'This model has no second conv stage to turn into an inception block'
      : 'The second conv stage becomes a GoogLeNet inception block of the same width';
}

$('arch-bn').addEventListener('change', (e) =>
  changeArch(withBatchNorm(model, e.target.checked), e.target.checked ? 'adding batch norm' : 'removing batch norm'),
);
$('arch-inception').addEventListener('change', (e) =>
  changeArch(withInception(model, e.target.checked), e.target.checked ? 'the inception block' : 'removing the inception block'),
);
$('arch-dropout').addEventListener('change', (e) =>
  changeArch(withDropout(model, e.target.checked), e.target.checked ? 'adding dropout' : 'removing dropout'),
);
$('arch-head').addEventListener('change', (e) => changeArch(withHead(model, e.target.value), `the ${e.target.value} head`));

let editor = null; // the layer editor, made once the layer kinds are known (start)

// check_spec runs in the worker (which owns the wasm module); answers come back by id.
const checks = new Map();
let checkId = 0;

function checkSpec(spec) {
  return new Promise((resolve, reject) => {
    if (!worker) {
      reject(new Error('the training worker is not running'));
      return;
    }
    checkId += 1;
    checks.set(checkId, { resolve, reject });
    send({ type: 'check', id: checkId, spec: JSON.stringify(spec) });
  });
}

// ---------------------------------------------------------------------------------------
// Views, redrawn at most once per animation frame.

// Run B (the twin) is drawn dashed over A; the previous run stays as a faded reference.
const REFERENCE = [
  { key: 'ref_train', label: 'previous run (train)', color: '#cbd5e1', width: 1, dash: [2, 3] },
  { key: 'ref_val', label: 'previous run (val.)', color: '#fcd9bd', width: 1.5, dash: [2, 3] },
];
const KEEP = { train: 'ref_train', val: 'ref_val' };
const lossChart = new CurveChart($('loss-chart'), {
  title: 'Loss (log scale)',
  log: true,
  series: [
    { key: 'train', label: 'train', color: '#2563eb', width: 1.5 },
    { key: 'val', label: 'validation', color: '#ea580c', width: 2, points: true },
    { key: 'penalty', label: 'penalty', color: '#7c3aed', width: 1.5 },
    { key: 'train_b', label: 'B train', color: '#16a34a', width: 1.5, dash: [5, 3] },
    { key: 'val_b', label: 'B validation', color: '#c026d3', width: 2, dash: [5, 3], points: true },
    { key: 'penalty_b', label: 'B penalty', color: '#a78bfa', width: 1.5, dash: [5, 3] },
    ...REFERENCE,
  ],
});
const accuracyChart = new CurveChart($('accuracy-chart'), {
  title: 'Accuracy',
  percent: true,
  series: [
    { key: 'train', label: 'train', color: '#2563eb', width: 1.5 },
    { key: 'val', label: 'validation', color: '#ea580c', width: 2, points: true },
    { key: 'train_b', label: 'B train', color: '#16a34a', width: 1.5, dash: [5, 3] },
    { key: 'val_b', label: 'B validation', color: '#c026d3', width: 2, dash: [5, 3], points: true },
    ...REFERENCE,
  ],
});
// the charts, for the end-to-end tests (twins that differ in nothing draw the same curves)
window.__charts = { loss: lossChart, accuracy: accuracyChart };
const filterView = new FilterView($('filters'));
const digitView = new DigitView($('digits'), 12);
const layerViews = new LayerViews(document.querySelector('section.views'));
const outputView = new OutputView($('outputs'));

// The task's own charts, made anew when the task changes: its validation metrics (for
// transfer: fine-tuned vs from scratch, validation and training accuracy) and its loss terms.
const taskCharts = { task: null, metrics: null, parts: null };

function makeTaskCharts(task) {
  if (taskCharts.task === task) {
    taskCharts.metrics?.clear();
    taskCharts.parts?.clear();
    return;
  }
  taskCharts.task = task;
  const t = TASKS[task];
  $('metrics-chart').replaceChildren();
  $('parts-chart').replaceChildren();
  taskCharts.metrics = null;
  taskCharts.parts = null;
  if (task === 'classify') return;
  const series =
    task === 'transfer'
      ? [
          { key: 'finetune', label: 'fine-tuned (val)', color: '#059669', width: 2, points: true },
          { key: 'scratch', label: 'from scratch (val)', color: '#64748b', width: 2, points: true },
          { key: 'finetune_train', label: 'fine-tuned (train)', color: '#6ee7b7', width: 1 },
          { key: 'scratch_train', label: 'from scratch (train)', color: '#cbd5e1', width: 1 },
        ]
      : t.metrics.map((m) => ({ ...m, width: 2, points: true }));
  taskCharts.metrics = new CurveChart($('metrics-chart'), {
    title: task === 'transfer' ? 'Accuracy: fine-tuned vs from scratch (same seed)' : `Validation ${t.metrics.map((m) => m.label).join(', ')}`,
    percent: true,
    series,
  });
  if (t.parts.length > 0) {
    const colors = ['#2563eb', '#db2777', '#ca8a04'];
    taskCharts.parts = new CurveChart($('parts-chart'), {
      title: 'Loss terms (train, log scale)',
      log: true,
      series: t.parts.map((key, i) => ({ key, label: key, color: colors[i % colors.length] })),
    });
  }
}

const view = {
  run: -1,
  status: null, // the last status report
  train: null, // the last train report
  probe: null, // the last probe result (drawn once)
  layer: null, // the last view result (drawn once)
  outputs: null, // redrawn outputs after a threshold change (drawn once)
  readoutsDirty: true,
  losses: { first: [], recent: [] }, // the run's first and latest train losses (stuck near chance?)
  classNames: null, // the task's class names, from the last outputs (Inside a layer names the label)
};
let frameQueued = false;

// Drawing is spread over animation frames so that no frame is a long task: each frame
// draws the readouts, then runs queued drawing jobs (a chart's redraw, a part of a probe's
// or a layer view's drawing) until FRAME_BUDGET_MS is spent; the rest wait for the next
// frame. A job queued under a name that waits already replaces it (the newer data wins).
// Each chart redraws at most every CHART_INTERVAL_MS (a few times a second is enough to
// watch a curve; every train report was up to 13 redraws a second of each).
const FRAME_BUDGET_MS = 8;
const CHART_INTERVAL_MS = 250;
const jobs = new Map();
const chartDrawnAt = new Map();

function queueJob(name, job) {
  jobs.set(name, job);
  queueFrame();
}

/** The parts of one drawing, as jobs `name:0`, `name:1`, ... (dropping a late older one's). */
function queueParts(name, parts) {
  for (const key of [...jobs.keys()]) if (key.startsWith(`${name}:`)) jobs.delete(key);
  parts.forEach((part, i) => jobs.set(`${name}:${i}`, part));
  queueFrame();
}

function queueFrame() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(drawFrame);
}

/** Queues the redraw of the charts with new points, each at most every CHART_INTERVAL_MS. */
function queueCharts() {
  const now = performance.now();
  let later = Infinity;
  const charts = [
    ['loss', lossChart],
    ['accuracy', accuracyChart],
    ['metrics', taskCharts.metrics],
    ['parts', taskCharts.parts],
  ];
  for (const [name, chart] of charts) {
    if (!chart?.dirty || jobs.has(`chart:${name}`)) continue;
    const wait = (chartDrawnAt.get(chart) ?? -Infinity) + CHART_INTERVAL_MS - now;
    if (wait <= 0) {
      queueJob(`chart:${name}`, () => {
        chartDrawnAt.set(chart, performance.now());
        chart.render();
      });
    } else {
      later = Math.min(later, wait);
    }
  }
  if (later < Infinity) setTimeout(queueFrame, later);
}

/** Queues the chapter's instruments: one drawer a job (each ends the frame, as a chart
 * does), each at most every CHART_INTERVAL_MS; and the live answer. */
function queueInstruments() {
  if (!instruments) return;
  drawAnswer();
  if (jobs.has('chart:instruments')) return;
  const wait = instruments.nextDue(CHART_INTERVAL_MS);
  if (wait <= 0) queueJob('chart:instruments', () => instruments?.renderOne(CHART_INTERVAL_MS));
  else if (wait < Infinity) setTimeout(queueFrame, wait);
}

const fmtPercent = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
const fmtLoss = (v) => (Number.isFinite(v) ? v.toFixed(4) : String(v));
const fmtPenalty = (v) => (!Number.isFinite(v) ? '–' : v === 0 ? '0' : v >= 1e-3 ? v.toFixed(4) : v.toExponential(2));

function drawFrame() {
  const start = performance.now();
  frameQueued = false;
  if (view.readoutsDirty) {
    view.readoutsDirty = false;
    drawReadouts();
  }
  queueCharts();
  queueInstruments();
  if (view.probe) {
    const p = view.probe;
    view.probe = null;
    queueJob('probe:text', () => drawProbeText(p));
    if (p.filters) queueJob('probe:filters', () => filterView.draw(p.filters, 'first'));
    else filterView.caption.textContent = 'This model has no conv layer.';
    if (p.digits) queueJob('probe:digits', () => digitView.draw(p.digits));
    if (p.outputs) queueParts('outputs', outputView.parts(p.outputs, outputInfo(p.step)));
    // run B beside A: its readouts and filters, and (but for classification) its outputs
    if (p.twin) queueJob('probe:twin', () => twinPanel.probe(p.twin));
    if (p.twin?.outputs && taskCharts.task !== 'classify') queueParts('twin-outputs', twinPanel.outputs.parts(p.twin.outputs, outputInfo(p.step)));
  }
  if (view.outputs) {
    queueParts('outputs', outputView.parts(view.outputs.outputs, outputInfo(view.outputs.step)));
    if (view.outputs.twin) queueParts('twin-outputs', twinPanel.outputs.parts(view.outputs.twin, outputInfo(view.outputs.step)));
    view.outputs = null;
  }
  if (view.layer) {
    const v = view.layer;
    view.layer = null;
    queueParts('layer', [
      () => {
        if ($('layer-select').value !== v.layer) $('layer-select').value = v.layer;
      },
      ...layerViews.parts(v, { task: taskCharts.task, classNames: view.classNames }),
    ]);
  }
  // at least one job a frame, then as many as fit in the budget. A chart's redraw ends the
  // frame: uPlot draws in a microtask after the job returns, so its cost is not measured
  // here (a few ms per chart, four charts in one frame made a long task)
  for (const [name, job] of jobs) {
    jobs.delete(name);
    job();
    if (name.startsWith('chart:') || performance.now() - start > FRAME_BUDGET_MS) break;
  }
  if (jobs.size > 0) queueFrame();
}

/** A probe's numbers: the validation readouts. */
function drawProbeText(p) {
  $('val-accuracy').textContent = fmtPercent(p.val_accuracy);
  $('val-accuracy').title = `on ${p.examples} validation examples at step ${p.step}, in eval mode; loss ${fmtLoss(p.val_loss)}`;
  if (p.twin && taskCharts.task === 'transfer') {
    $('val-metric').textContent = fmtPercent(p.twin.val_accuracy);
  } else if (p.metrics && taskCharts.task !== 'classify') {
    const key = TASKS[taskCharts.task].headline.key;
    $('val-metric').textContent = fmtMetric(key, p.metrics[key]);
    $('val-metric').title = Object.entries(p.metrics)
      .map(([k, v]) => `${k} ${fmtMetric(k, v)}`)
      .join(' · ');
  }
}

/** Settings that only change how the page draws (no worker round trip): redrawn at once. */
function applyViewSettings() {
  filterView.setScale(state.kernel_scale);
  layerViews.filters.setScale(state.kernel_scale);
  twinPanel?.filters.setScale(state.kernel_scale);
}

function outputInfo(step) {
  return { step, nms_iou: state.nms_iou, score_threshold: state.score_threshold };
}

/** Sets a node's text only when it changes: an unchanged readout costs no layout. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function drawReadouts() {
  const s = view.status;
  const t = view.train;
  setText($('step'), String(t ? t.step : (s?.step ?? 0)));
  setText($('loss'), t ? fmtLoss(t.loss) : '–');
  setText($('penalty'), t ? fmtPenalty(t.penalty) : '–');
  setText($('accuracy'), t ? fmtPercent(t.accuracy) : '–');
  setText(
    $('loss-parts'),
    t?.parts && Object.keys(t.parts).length > 0
      ? Object.entries(t.parts)
          .map(([k, v]) => `${k} ${fmtLoss(v)}`)
          .join(' · ')
      : '–',
  );
  if (t && t.ms_per_step > 0) {
    const perSecond = 1000 / t.ms_per_step;
    setText($('speed'), `${t.ms_per_step.toFixed(1)} ms/step · ${perSecond.toFixed(perSecond < 10 ? 1 : 0)} steps/s`);
  } else {
    setText($('speed'), '–');
  }

  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const stuck =
    t && t.phase !== 'diverged' && view.losses.recent.length > 0
      ? stuckAtChance({
          task: state?.task,
          step: t.step,
          first: mean(view.losses.first),
          recent: mean(view.losses.recent),
          accuracy: t.accuracy,
          classes: model?.classes,
          lr: state?.lr,
        })
      : null;
  let phase = 'idle';
  if (s?.building) phase = 'building…';
  else if (t?.phase === 'diverged') phase = `diverged at step ${t.diverged_at ?? t.step}`;
  else if (s?.running) phase = stuck ? 'stuck near chance' : 'training';
  else if (t) phase = 'paused';
  setText($('phase'), phase);
  $('phase-hint').hidden = !stuck || Boolean(s?.building);
  setText($('phase-hint'), stuck ? `Stuck near chance: ${stuck.why}. ${stuck.hint}` : '');

  const ready = Boolean(s?.ready) && !s?.building;
  const diverged = t?.phase === 'diverged';
  $('play').disabled = !ready || Boolean(s?.running) || diverged;
  $('pause').disabled = !ready || !s?.running;
  $('step-once').disabled = !ready || diverged;
  $('export-weights').disabled = !ready;
  $('export-model-py').disabled = !ready;

  const badge = $('backend');
  const name = s?.backend ?? 'none';
  badge.dataset.backend = name;
  setText(badge.querySelector('.badge-name'), { cpu: 'CPU', webgpu: 'WebGPU', none: '…' }[name] ?? name);
  setText(badge.querySelector('.badge-reason'), s?.reason ?? '');
}

/** The built model's layers: the layer picker and the summary line. */
function showModel(summary) {
  $('arch-summary').textContent = `${summary.layers.length} layers · ${fmtTotals(summary)}`;
  const select = $('layer-select');
  select.replaceChildren(
    ...summary.layers.map((l) => new Option(`${l.name} · ${l.kind} → ${l.out.join('×')}`, l.name)),
  );
  const fallback = summary.layers.find((l) => l.kind === 'conv2d') ?? summary.layers[0];
  if (state.layer && !summary.layers.some((l) => l.name === state.layer)) {
    // a link's layer is reported; one that a change of architecture took away is just replaced
    if (layerFromLink) {
      setError('layer', `viewed layer (layer): the model has no layer "${state.layer}"; showing layer ${fallback?.name} instead`);
    }
    state = { ...state, layer: '' };
    writeHash();
    sendConfigure();
  }
  select.value = state.layer || fallback?.name || '';
  layerFromLink = false;
}

/** The task's note and its freeze control, for a freshly built model. */
function showTask(msg) {
  const note = $('task-note');
  const freezeLayers = msg.task === 'transfer' ? freezable(msg.summary.layers) : [];
  form.setFreezable(freezeLayers);
  if (msg.task === 'transfer' && msg.transfer) {
    const names = new Set(freezeLayers.map((l) => l.name));
    const unknown = freezeList(state.freeze).filter((n) => !names.has(n));
    if (unknown.length > 0) {
      setError('freeze', `frozen layers (freeze): the model has no layer with parameters named ${unknown.map((n) => `"${n}"`).join(', ')} to freeze (it has ${[...names].join(', ')}); those are ignored`);
      setState({ freeze: freezeText(freezeList(state.freeze).filter((n) => names.has(n))) });
    }
    note.textContent =
      `Fine-tuning from ${msg.transfer.source.split('/').pop()} (digits 0–4, made by scripts/pretrain-backbone.sh): ` +
      `loaded ${msg.transfer.loaded.length} tensors; the new head (${msg.transfer.skipped.join(', ') || 'none'}) starts fresh. ` +
      `The gray curves train the same model from scratch, same seed and data, every layer.`;
  } else if (msg.task === 'detect') {
    note.textContent = 'Each cell of the grid predicts objectness, a box and a class; the sliders change the drawn detections at once, without retraining.';
  } else if (msg.task === 'segment') {
    note.textContent = 'The decoder and the skip connections pick the model (a new run); the Dice weight applies from the next step.';
  } else if (msg.task === 'localize') {
    note.textContent = 'The head predicts the class and the box (centre, width, height); the loss adds the box term, times its weight, to the cross-entropy.';
  } else {
    note.textContent = '';
  }
}

$('layer-select').addEventListener('change', (e) => {
  setError('layer', null);
  state = { ...state, layer: e.target.value };
  writeHash();
  sendConfigure();
});

// ---------------------------------------------------------------------------------------
// Exports: the worker hands over the bytes; the page saves them as a download.

function download(filename, data) {
  const type = filename.endsWith('.py') ? 'text/x-python' : 'application/octet-stream';
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

$('export-weights').addEventListener('click', () => send({ type: 'export', what: 'weights' }));
$('export-model-py').addEventListener('click', () => send({ type: 'export', what: 'model_py' }));

// ---------------------------------------------------------------------------------------
// The worker.

let worker;

function send(message) {
  worker?.postMessage(message);
}

// Run B's spec: A's when the twin leaves the model alone; else its preset (+ arch), loaded
// and checked here, cached by what it depends on.
let twinModel = { key: null, spec: null };
let twinSeq = 0;

const modelKey = (s) => JSON.stringify([s.preset, s.arch]);

async function resolveTwin(b) {
  const seq = ++twinSeq;
  const key = modelKey(b);
  try {
    const base = await loadPreset(b.preset);
    const spec = specFor(base, b.arch);
    if (b.arch) {
      const result = await checkSpec(spec);
      if (!result.ok) throw new Error(`its layers do not validate: ${problems(result)}`);
    }
    if (seq !== twinSeq) return;
    twinModel = { key, spec };
    setError('twin-model', null);
  } catch (err) {
    if (seq !== twinSeq) return;
    setError('twin-model', `twin run B (twin): ${err.message}; twin off`);
    state = { ...state, twin: '' };
    writeHash();
    form.fill();
    updateChapterLabels();
  }
  sendConfigure();
}

function sendConfigure() {
  if (!model) return;
  const b = twinState(state);
  let twin = null;
  if (b) {
    if (modelKey(b) === modelKey(state)) twin = { state: b, spec: JSON.stringify(taskSpec(model, b)) };
    else if (twinModel.key === modelKey(b)) twin = { state: b, spec: JSON.stringify(taskSpec(twinModel.spec, b)) };
    else {
      resolveTwin(b); // sends once B's model is known, so that A and B start together
      return;
    }
  }
  send({ type: 'configure', state, spec: JSON.stringify(taskSpec(model, state)), twin, instruments: instrumentsWanted() });
}

function startRun(run) {
  view.run = run;
  view.train = null;
  view.probe = null;
  view.layer = null;
  view.outputs = null;
  view.losses = { first: [], recent: [] };
  view.classNames = null;
  jobs.clear(); // drawings of the old run that have not been drawn yet
  outputView.clear();
  taskCharts.metrics?.clear();
  taskCharts.parts?.clear();
  $('val-metric').textContent = '–';
  // the previous run's curves stay, faded, to compare with
  lossChart.clearKeeping(KEEP);
  accuracyChart.clearKeeping(KEEP);
  twinPanel.clear();
  const hasTwin = Boolean(twinState(state));
  for (const chart of [lossChart, accuracyChart]) for (const key of ['train_b', 'val_b', 'penalty_b']) chart.show(key, hasTwin);
  if (instruments && shownChapter) {
    const box = chapterView.instruments;
    instruments = new Instruments(box, chapters[shownChapter].instruments ?? [], instruments.ctx);
    instruments.ctx.labels = runLabels();
  }
  latestEval = { a: null, b: null };
  filterView.clear();
  digitView.clear();
  layerViews.clear();
  $('val-accuracy').textContent = '–';
  setError('diverged', null);
  setError('worker', null);
}

function onWorkerMessage(msg) {
  if (msg.type === 'kinds') {
    if (msg.error) setError('kinds', msg.error);
    start(msg.kinds);
    return;
  }
  if (msg.type === 'error') {
    // 'run' errors belong to the current model and clear when a new one is built;
    // 'session' errors (the GPU failed, we moved to the CPU) stay until dismissed.
    setError(msg.scope === 'session' ? 'worker-session' : 'worker', msg.message);
    return;
  }
  if (msg.type === 'check-result') {
    const pending = checks.get(msg.id);
    checks.delete(msg.id);
    if (msg.error !== undefined) pending?.reject(new Error(msg.error));
    else pending?.resolve(msg.result);
    return;
  }
  if (msg.type === 'export-result') {
    download(msg.filename, msg.data);
    return;
  }
  if (msg.run !== undefined && msg.run !== view.run) {
    if (msg.run < view.run) return; // a late message from a run that has been replaced
    startRun(msg.run);
  }
  if (msg.type === 'report' && msg.kind === 'status') {
    view.status = msg;
  } else if (msg.type === 'report' && msg.kind === 'train') {
    view.train = msg;
    if (Number.isFinite(msg.loss)) {
      if (view.losses.first.length < 3) view.losses.first.push(msg.loss);
      view.losses.recent = [...view.losses.recent.slice(-9), msg.loss];
    }
    const b = msg.twin;
    lossChart.add(msg.step, { train: msg.loss, penalty: msg.penalty, train_b: b?.loss, penalty_b: b?.penalty });
    accuracyChart.add(msg.step, { train: msg.accuracy, train_b: b?.accuracy });
    if (b) queueJob('train:twin', () => twinPanel.train(b)); // drawn in a frame, the latest only
    instruments?.feed('train', msg);
    if (msg.parts && Object.keys(msg.parts).length > 0) taskCharts.parts?.add(msg.step, msg.parts);
    if (msg.twin) taskCharts.metrics?.add(msg.step, { finetune_train: msg.accuracy, scratch_train: msg.twin.accuracy });
    if (msg.phase === 'diverged') {
      setError(
        'diverged',
        `Training diverged at step ${msg.diverged_at ?? msg.step} (the loss is no longer finite). ` +
          'Lower the learning rate and press reset.',
      );
    }
  } else if (msg.type === 'model') {
    makeTaskCharts(msg.task);
    showModel(msg.summary);
    showTask(msg);
  } else if (msg.type === 'probe-result') {
    view.probe = msg;
    view.classNames = msg.outputs?.class_names ?? view.classNames;
    lossChart.add(msg.step, { val: msg.val_loss, val_b: msg.twin?.val_loss });
    accuracyChart.add(msg.step, { val: msg.val_accuracy, val_b: msg.twin?.val_accuracy });
    latestEval = { a: msg, b: msg.twin ?? null };
    instruments?.feed('probe', msg);
    if (msg.twin) taskCharts.metrics?.add(msg.step, { finetune: msg.val_accuracy, scratch: msg.twin.val_accuracy });
    else if (msg.metrics) taskCharts.metrics?.add(msg.step, msg.metrics);
  } else if (msg.type === 'instruments') {
    instruments?.feed('instruments', msg);
  } else if (msg.type === 'outputs-result') {
    view.outputs = msg;
    view.classNames = msg.outputs?.class_names ?? view.classNames;
  } else if (msg.type === 'view-result') {
    view.layer = msg;
  } else {
    setError('worker', `unexpected message from the worker: ${JSON.stringify(msg).slice(0, 200)}`);
    return;
  }
  view.readoutsDirty = true;
  queueFrame();
}

function startWorker() {
  try {
    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  } catch (err) {
    setError('worker', `could not start the training worker: ${err.message}`);
    start(null);
    return;
  }
  worker.onmessage = (e) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    setError('worker', `the training worker failed: ${e.message || 'it could not load (see the console)'}`);
    start(null);
  };
  worker.onmessageerror = () => setError('worker', 'a message from the training worker could not be read');
}

$('play').addEventListener('click', () => send({ type: 'play' }));
$('pause').addEventListener('click', () => send({ type: 'pause' }));
$('step-once').addEventListener('click', () => send({ type: 'step' }));
$('reset').addEventListener('click', () => send({ type: 'reset' }));

// ---------------------------------------------------------------------------------------
// Start: the worker sends the layer kinds (the Rust side's table) once it has loaded the
// wasm core; then the form and the layer editor are made and the link is read.

let started = false;
let twinControl = null;
let twinPanel = null;

/** Once: with the kinds (null when the worker could not give them; a build then says why). */
async function start(kinds) {
  if (started) return;
  started = true;
  if (kinds) setKinds(kinds);
  const list = await loadChapters();
  chapters = chapterMap(list);
  chapterView = new ChapterView({ chapters: list, onPick: (slug) => setState({ chapter: slug }) });
  twinControl = makeTwinControl(document.querySelector('aside.controls'), { getState: () => state, setState, setError });
  twinPanel = new TwinPanel(document.querySelector('main.layout'), document.querySelector('section.chart:nth-of-type(2)') ?? $('accuracy-chart').parentElement);
  form = bindForm({ getState: () => state, setState, setError });
  editor = new LayerEditor($('layer-editor'), {
    check: (layers) => checkSpec({ ...(model ?? preset), layers }),
    onApply: (layers) => changeArch({ ...model, layers }, 'the edited layer list'),
  });
  window.addEventListener('hashchange', loadHash);
  loadHash();
  twinControl.prefill();
}

startWorker();
queueFrame();
