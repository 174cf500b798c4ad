// The main thread: reads the state table from the URL hash, wires the controls, sends
// commands to the training worker and draws what comes back. It never trains, and every
// draw is cheap (a few text nodes, two uPlot redraws, small canvases, once per frame).
import { FIELDS, fromHash, parseField, toHash } from './state.js';
import { CurveChart } from './ui/charts.js';
import { FilterView } from './ui/filters.js';
import { DigitView } from './ui/digits.js';

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

// ---------------------------------------------------------------------------------------
// State: one table, mirrored in the URL hash and the form.

let state;

function loadHash() {
  const parsed = fromHash(location.hash);
  state = parsed.state;
  setError(
    'hash',
    parsed.errors.length
      ? `The link's settings had problems, so defaults were used for them: ${parsed.errors.join('; ')}.`
      : null,
  );
  history.replaceState(null, '', toHash(state));
  for (const name of Object.keys(FIELDS)) setError(`field:${name}`, null);
  fillForm();
}

function fillForm() {
  for (const el of document.querySelectorAll('[data-field]')) {
    const name = el.dataset.field;
    const field = FIELDS[name];
    if (el.tagName === 'SELECT' && el.options.length === 0) {
      for (const value of field.values) el.add(new Option(value, value));
    }
    el.value = String(state[name]);
    el.removeAttribute('aria-invalid');
  }
  $('momentum').disabled = state.optimizer !== 'sgd';
}

function onFieldChange(el) {
  const name = el.dataset.field;
  const parsed = parseField(name, el.value);
  if (!parsed.ok) {
    el.setAttribute('aria-invalid', 'true');
    setError(`field:${name}`, `${parsed.message}. Still using ${state[name]}.`);
    return;
  }
  el.removeAttribute('aria-invalid');
  setError(`field:${name}`, null);
  if (parsed.value === state[name]) return;
  state = { ...state, [name]: parsed.value };
  history.replaceState(null, '', toHash(state));
  $('momentum').disabled = state.optimizer !== 'sgd';
  send({ type: 'configure', state });
}

for (const el of document.querySelectorAll('[data-field]')) {
  el.addEventListener('change', () => onFieldChange(el));
}
document.querySelector('form.fields').addEventListener('submit', (e) => e.preventDefault());

window.addEventListener('hashchange', () => {
  loadHash();
  send({ type: 'configure', state });
});

// ---------------------------------------------------------------------------------------
// Views, redrawn at most once per animation frame.

const lossChart = new CurveChart($('loss-chart'), { title: 'Loss (log scale)', log: true });
const accuracyChart = new CurveChart($('accuracy-chart'), { title: 'Accuracy', percent: true });
const filterView = new FilterView($('filters'));
const digitView = new DigitView($('digits'), 12);

const view = {
  run: -1,
  status: null, // the last status report
  train: null, // the last train report
  probe: null, // the last probe result (drawn once)
  readoutsDirty: true,
};
let frameQueued = false;

function queueFrame() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(drawFrame);
}

const fmtPercent = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
const fmtLoss = (v) => (Number.isFinite(v) ? v.toFixed(4) : String(v));

function drawFrame() {
  frameQueued = false;
  if (view.readoutsDirty) {
    view.readoutsDirty = false;
    drawReadouts();
  }
  lossChart.render();
  accuracyChart.render();
  if (view.probe) {
    const p = view.probe;
    view.probe = null;
    $('val-accuracy').textContent = fmtPercent(p.val_accuracy);
    $('val-accuracy').title = `on ${p.examples} validation digits at step ${p.step}; loss ${fmtLoss(p.val_loss)}`;
    filterView.draw(p.filters);
    digitView.draw(p.digits);
  }
}

function drawReadouts() {
  const s = view.status;
  const t = view.train;
  $('step').textContent = String(t ? t.step : (s?.step ?? 0));
  $('loss').textContent = t ? fmtLoss(t.loss) : '–';
  $('accuracy').textContent = t ? fmtPercent(t.accuracy) : '–';
  if (t && t.ms_per_step > 0) {
    const perSecond = 1000 / t.ms_per_step;
    $('speed').textContent = `${t.ms_per_step.toFixed(1)} ms/step · ${perSecond.toFixed(perSecond < 10 ? 1 : 0)} steps/s`;
  } else {
    $('speed').textContent = '–';
  }

  let phase = 'idle';
  if (s?.building) phase = 'building…';
  else if (t?.phase === 'diverged') phase = `diverged at step ${t.diverged_at ?? t.step}`;
  else if (s?.running) phase = 'training';
  else if (t) phase = 'paused';
  $('phase').textContent = phase;

  const ready = Boolean(s?.ready) && !s?.building;
  const diverged = t?.phase === 'diverged';
  $('play').disabled = !ready || Boolean(s?.running) || diverged;
  $('pause').disabled = !ready || !s?.running;
  $('step-once').disabled = !ready || diverged;

  const badge = $('backend');
  const name = s?.backend ?? 'none';
  badge.dataset.backend = name;
  badge.querySelector('.badge-name').textContent =
    { cpu: 'CPU', webgpu: 'WebGPU', none: '…' }[name] ?? name;
  badge.querySelector('.badge-reason').textContent = s?.reason ?? '';
}

// ---------------------------------------------------------------------------------------
// The worker.

let worker;

function send(message) {
  worker?.postMessage(message);
}

function startRun(run) {
  view.run = run;
  view.train = null;
  view.probe = null;
  lossChart.clear();
  accuracyChart.clear();
  filterView.clear();
  digitView.clear();
  $('val-accuracy').textContent = '–';
  setError('diverged', null);
  setError('worker', null);
}

function onWorkerMessage(msg) {
  if (msg.type === 'error') {
    // 'run' errors belong to the current model and clear when a new one is built;
    // 'session' errors (the GPU failed, we moved to the CPU) stay until dismissed.
    setError(msg.scope === 'session' ? 'worker-session' : 'worker', msg.message);
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
    lossChart.add(msg.step, msg.loss, null);
    accuracyChart.add(msg.step, msg.accuracy, null);
    if (msg.phase === 'diverged') {
      setError(
        'diverged',
        `Training diverged at step ${msg.diverged_at ?? msg.step} (the loss is no longer finite). ` +
          'Lower the learning rate and press reset.',
      );
    }
  } else if (msg.type === 'probe-result') {
    view.probe = msg;
    lossChart.add(msg.step, null, msg.val_loss);
    accuracyChart.add(msg.step, null, msg.val_accuracy);
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
    return;
  }
  worker.onmessage = (e) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    setError('worker', `the training worker failed: ${e.message || 'it could not load (see the console)'}`);
  };
  worker.onmessageerror = () => setError('worker', 'a message from the training worker could not be read');
}

$('play').addEventListener('click', () => send({ type: 'play' }));
$('pause').addEventListener('click', () => send({ type: 'pause' }));
$('step-once').addEventListener('click', () => send({ type: 'step' }));
$('reset').addEventListener('click', () => send({ type: 'reset' }));

loadHash();
startWorker();
send({ type: 'configure', state });
queueFrame();
