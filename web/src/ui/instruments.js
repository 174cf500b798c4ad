// A chapter's instruments (docs/chapters.md, "Page instruments"): one drawer per name, each
// a <figure data-testid="instrument" data-instrument=<name> data-step=<step of its last
// update>> with a title, labelled axes (units) and a one-line caption. Curves and bars are
// uPlot (ui/charts.js); images and kernels are small canvases, weights on a diverging scale
// white at 0. The drawers only keep what arrived; `render` (once per frame) draws what
// changed. Runs A and B are drawn overlaid (curves) or side by side (images).
//
// Inputs: `instruments` messages from the worker ({step, a: {probe: header}, b}), the train
// reports and the probe results (evaluations), and the state (for the lr sweep).
import { BarChart, CurveChart } from './charts.js';
import { INSTRUMENT_PROBES } from '../chapters.js';

const A = { train: '#2563eb', val: '#ea580c', c3: '#0891b2' };
const B = { train: '#16a34a', val: '#c026d3', c3: '#a16207' };
const IMAGE = 96; // CSS pixels per drawn map side

const el = (tag, className, text) => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
};

const fmt = (v, d = 3) => (Number.isFinite(v) ? String(+v.toPrecision(d)) : '–');

/** Diverging colour for w / scale in [-1, 1]: blue below 0, white at 0, red above. */
export function diverging(t) {
  const x = Math.max(-1, Math.min(1, t));
  const k = Math.round(255 * (1 - Math.abs(x)));
  return x >= 0 ? [255, k, k] : [k, k, 255];
}

/** Draws an h×w plane (`data` from `offset`) into a canvas: gray (auto range) or diverging (±scale). */
function paintPlane(canvas, data, h, w, { offset = 0, scale = null, marks = null } = {}) {
  canvas.width = w;
  canvas.height = h;
  const side = IMAGE * Math.min(1, Math.max(w, h) >= 8 ? 1 : 0.5);
  canvas.style.width = `${Math.round((side * w) / Math.max(w, h))}px`;
  canvas.style.height = `${Math.round((side * h) / Math.max(w, h))}px`;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  let lo = Infinity;
  let hi = -Infinity;
  if (scale === null) {
    for (let i = 0; i < h * w; i++) {
      const v = data[offset + i];
      if (v === undefined) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  for (let i = 0; i < h * w; i++) {
    const v = data[offset + i];
    let px;
    if (v === undefined) px = [255, 255, 255]; // past the end of a vector drawn as a block
    else if (scale !== null) px = diverging(scale > 0 ? v / scale : 0);
    else {
      const g = hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 0;
      px = [g, g, g];
    }
    if (marks?.has(i)) px = [239, 68, 68];
    img.data.set([...px, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  return { lo, hi };
}

/** A labelled image: <figure> with a canvas and a caption line. */
function tile(label) {
  const fig = el('figure', 'inst-tile');
  const canvas = el('canvas');
  const cap = el('figcaption', 'caption', label);
  fig.append(canvas, cap);
  return { fig, canvas, cap };
}

function maxAbs(data) {
  let m = 0;
  for (let i = 0; i < data.length; i++) m = Math.max(m, Math.abs(data[i]));
  return m;
}

/** The H and W of a shape (its last two dims) and the planes before them. */
function planes(shape) {
  if (shape.length === 1) {
    // a vector (a linear layer's units): drawn as a near-square block, row by row
    const w = Math.ceil(Math.sqrt(shape[0]));
    return { h: Math.ceil(shape[0] / w), w, n: 1 };
  }
  const w = shape.at(-1);
  const h = shape.length > 1 ? shape.at(-2) : 1;
  return { h, w, n: shape.slice(0, -2).reduce((a, b) => a * b, 1) };
}

// ---------------------------------------------------------------------------------------
// Drawer kinds: curves over steps, a chart replaced on each probe, images.

/** Curves over training steps, A and B overlaid; `pick(side, msg)` gives {key: value}. */
class StepCurves {
  constructor(body, { series, log = false, percent = false, yLabel, auto = true }) {
    this.chart = new CurveChart(body, { title: '', log, percent, auto: auto && !percent, yLabel, series, height: 200 });
  }
  add(step, values) {
    this.chart.add(step, values);
  }
  render() {
    this.chart.render();
  }
}

function abSeries(parts, { b = true } = {}) {
  const series = [];
  parts.forEach(({ key, label, color, colorB, width = 1.5, dash }) => {
    series.push({ key: `a_${key}`, label: `A ${label}`, color, width, dash });
    if (b) series.push({ key: `b_${key}`, label: `B ${label}`, color: colorB, width, dash: dash ?? [5, 3] });
  });
  return series;
}

/**
 * One instrument: the figure element and what updates it. `feed` is called with
 * ('instruments', msg) / ('train', msg) / ('probe', msg); it returns true when it drew
 * something new (data-step is then set on the next render).
 */
class Instrument {
  constructor(name, spec, ctx) {
    this.name = name;
    this.ctx = ctx;
    this.root = el('figure', 'panel instrument');
    this.root.dataset.testid = 'instrument';
    this.root.dataset.instrument = name;
    this.title = el('h3', 'inst-title', spec.title);
    this.body = el('div', 'inst-body');
    this.note = el('p', 'caption inst-note', '');
    this.caption = el('figcaption', 'caption', spec.caption);
    this.root.append(this.title, this.body, this.note, this.caption);
    this.spec = spec;
    this.state = spec.init?.(this) ?? {};
    this.pendingStep = null;
  }
  feed(kind, msg) {
    const f = this.spec[kind];
    if (!f) return;
    // image drawers build canvases: that waits for the next frame (the latest result only)
    if (kind === 'instruments' && this.spec.deferred) {
      this.deferred = msg;
      return;
    }
    if (f.call(this.spec, this, msg) !== false) this.pendingStep = msg.step;
  }
  /** Has something to draw on the next render. */
  get dirty() {
    return this.deferred !== undefined || this.pendingStep !== null || Boolean(this.state.data) || this.state.dirty || this.state.pending?.length > 0 || this.state.curves?.chart?.dirty;
  }
  render() {
    if (this.deferred !== undefined) {
      const msg = this.deferred;
      this.deferred = undefined;
      if (this.spec.instruments.call(this.spec, this, msg) !== false) this.pendingStep = msg.step;
    }
    this.spec.render?.(this);
    if (this.pendingStep !== null) {
      this.root.dataset.step = String(this.pendingStep);
      this.pendingStep = null;
    }
  }
}

/** The header of probe `name` for side 'a' or 'b', or null. */
const hdr = (msg, side, name) => msg[side]?.[name] ?? null;

/** An instrument that draws one chart per probe result (not over steps), A and B. */
function chartPer(msg, name) {
  return { a: hdr(msg, 'a', name), b: hdr(msg, 'b', name) };
}

// Images of A and B side by side: rows of tiles, rebuilt when their count changes.
function imageRows(inst, rows) {
  // rows: [{label, tiles: [{label, data, h, w, offset?, scale?, marks?}]}]
  const wrap = el('div', 'inst-images');
  for (const row of rows) {
    const r = el('div', 'inst-row');
    r.append(el('span', 'inst-row-label', row.label));
    for (const t of row.tiles) {
      const tl = tile(t.label);
      paintPlane(tl.canvas, t.data, t.h, t.w, t);
      r.append(tl.fig);
    }
    wrap.append(r);
  }
  inst.body.replaceChildren(wrap);
}

/** The first-layer kernels as tiles [O, C, K, K], all on one ±scale. */
function kernelTiles(first, scale, max = 16) {
  const [o, c, kh, kw] = first.shape;
  const tiles = [];
  for (let i = 0; i < Math.min(o * c, max); i++) {
    tiles.push({ label: c > 1 ? `${Math.floor(i / c)}·${i % c}` : String(i), data: first.data, h: kh, w: kw, offset: i * kh * kw, scale });
  }
  return tiles;
}

// ---------------------------------------------------------------------------------------
// The drawers, by name (docs/chapters.md's table).

export const DRAWERS = {
  'weight-histogram': {
    title: 'Conv-kernel weights',
    caption: 'Histogram of every conv kernel weight (log count): L1 piles weights at exactly 0, L2 shrinks a Gaussian.',
    init: (inst) => ({
      chart: new CurveChart(inst.body, {
        title: '',
        log: true,
        xLabel: 'weight value',
        yLabel: 'count (log)',
        height: 200,
        series: [
          { key: 'a', label: 'A', color: A.train, width: 2 },
          { key: 'b', label: 'B', color: B.train, width: 2, dash: [5, 3] },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const { a, b } = chartPer(msg, 'kernels');
      if (!a) return false;
      const centers = (h) => [...h.counts].map((_, i) => h.lo + ((i + 0.5) * (h.hi - h.lo)) / h.counts.length);
      // one x axis: the union of both histograms' bin centres
      const xa = centers(a.hist);
      const xb = b ? centers(b.hist) : [];
      const xs = [...new Set([...xa, ...xb])].sort((p, q) => p - q);
      const col = (x, h, hx) => xs.map((v) => {
        const i = hx.indexOf(v);
        return i >= 0 && h.counts[i] > 0 ? h.counts[i] : null;
      });
      inst.state.data = [xs, col(xs, a.hist, xa), b ? col(xs, b.hist, xb) : xs.map(() => null)];
    },
    render(inst) {
      if (!inst.state.data) return;
      const [xs, ya, yb] = inst.state.data;
      inst.state.chart.plot.setData([xs, ya, yb]);
      inst.state.data = null;
    },
  },
  'zero-share': {
    title: 'Exact zeros and near zeros',
    caption: 'Share of conv-kernel weights exactly 0 and with |w| < 1e-3, over steps; proximal L1 makes true zeros.',
    init: (inst) => ({
      curves: new StepCurves(inst.body, {
        percent: true,
        yLabel: 'share of conv weights',
        series: abSeries([
          { key: 'zero', label: 'exactly 0', color: A.train, colorB: B.train, width: 2 },
          { key: 'near', label: '|w| < 1e-3', color: A.c3, colorB: B.c3 },
        ]),
      }),
    }),
    instruments(inst, msg) {
      const a = hdr(msg, 'a', 'kernels');
      const b = hdr(msg, 'b', 'kernels');
      if (!a) return false;
      inst.state.curves.add(msg.step, { a_zero: a.zero_share, a_near: a.near_zero_share, b_zero: b?.zero_share, b_near: b?.near_zero_share });
    },
    render: (inst) => inst.state.curves.render(),
  },
  'filter-norms': {
    title: 'Per-filter L2 norm (first conv)',
    caption: 'The L2 norm of each output filter of the first conv layer, A and B; L2 shrinks all, L1 removes some.',
    init: (inst) => ({
      chart: new BarChart(inst.body, {
        title: '',
        xLabel: 'filter',
        yLabel: 'L2 norm',
        series: [
          { label: 'A', color: A.train },
          { label: 'B', color: B.train },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const { a, b } = chartPer(msg, 'kernels');
      if (!a?.filter_norms) return false;
      const n = Math.max(a.filter_norms.length, b?.filter_norms?.length ?? 0);
      inst.state.data = [[...Array(n).keys()], [...a.filter_norms], b?.filter_norms ? [...b.filter_norms] : Array(n).fill(null)];
    },
    render(inst) {
      if (!inst.state.data) return;
      const [xs, ya, yb] = inst.state.data;
      inst.state.chart.draw(xs, [ya, yb]);
      inst.state.data = null;
    },
  },
  'first-kernels': {
    deferred: true,
    title: 'First-layer kernels, A and B',
    caption: 'Each kernel of the first conv layer on ONE diverging scale shared by A and B: white is 0, red > 0, blue < 0.',
    instruments(inst, msg) {
      const a = hdr(msg, 'a', 'kernels')?.first;
      const b = hdr(msg, 'b', 'kernels')?.first;
      if (!a) return false;
      const scale = Math.max(maxAbs(a.data), b ? maxAbs(b.data) : 0);
      const rows = [{ label: inst.ctx.labels.a, tiles: kernelTiles(a, scale) }];
      if (b) rows.push({ label: inst.ctx.labels.b, tiles: kernelTiles(b, scale) });
      imageRows(inst, rows);
      inst.note.textContent = `Shared scale ±${fmt(scale)} (kernel row × column; ${a.shape.join('×')} weights in ${a.layer ?? 'the first conv'}).`;
    },
  },
  'loss-terms': {
    title: 'Data loss and penalty',
    caption: 'The data loss and the regularization penalty of the training batches, as separate curves (log scale).',
    init: (inst) => ({
      curves: new StepCurves(inst.body, {
        log: true,
        yLabel: 'loss (nats)',
        series: abSeries([
          { key: 'loss', label: 'data loss', color: A.train, colorB: B.train, width: 2 },
          { key: 'penalty', label: 'penalty', color: A.val, colorB: B.val },
        ]),
      }),
    }),
    train(inst, msg) {
      inst.state.curves.add(msg.step, { a_loss: msg.loss, a_penalty: msg.penalty, b_loss: msg.twin?.loss, b_penalty: msg.twin?.penalty });
    },
    render: (inst) => inst.state.curves.render(),
  },
  landscape: {
    title: 'Loss landscape along the gradient (Santurkar et al., Fig. 4)',
    caption: 'At each probe: loss spread over step sizes η along −g, gradient change, and effective β-smoothness; smaller is smoother.',
    init(inst) {
      const row = el('div', 'inst-grid');
      const parts = ['loss_range', 'grad_change', 'beta'].map((key) => {
        const box = el('div');
        row.append(box);
        return [key, box];
      });
      inst.body.append(row);
      const labels = { loss_range: 'loss range (nats)', grad_change: 'gradient change ‖Δg‖', beta: 'β-smoothness' };
      return {
        curves: Object.fromEntries(
          parts.map(([key, box]) => [
            key,
            new StepCurves(box, {
              log: true,
              yLabel: labels[key],
              series: abSeries([{ key: 'v', label: key.replace('_', ' '), color: A.train, colorB: B.train, width: 2 }]),
            }),
          ]),
        ),
      };
    },
    instruments(inst, msg) {
      const a = hdr(msg, 'a', 'landscape');
      const b = hdr(msg, 'b', 'landscape');
      if (!a) return false;
      for (const key of Object.keys(inst.state.curves)) inst.state.curves[key].add(msg.step, { a_v: a[key], b_v: b?.[key] });
    },
    render: (inst) => Object.values(inst.state.curves).forEach((c) => c.render()),
  },
  'activation-percentiles': {
    title: 'Activation percentiles per layer',
    caption: "The 15th / 50th / 85th percentiles of each layer's pre-activation outputs over steps (Ioffe & Szegedy, Fig. 1).",
    init: () => ({ charts: {}, pending: [] }),
    instruments(inst, msg) {
      const got = ['a', 'b'].map((side) => [side, hdr(msg, side, 'activations')]).filter(([, h]) => h);
      if (got.length === 0) return false;
      inst.state.pending.push([msg.step, got]);
    },
    render(inst) {
      for (const [step, got] of inst.state.pending) {
        for (const [side, h] of got) {
          if (!inst.state.charts[side]) {
            const box = el('div');
            inst.body.append(el('p', 'inst-row-label', inst.ctx.labels[side]), box);
            const colors = ['#2563eb', '#ea580c', '#16a34a', '#c026d3', '#0891b2', '#a16207', '#64748b', '#db2777'];
            const series = h.layers.flatMap((l, i) => [
              { key: `${l.name}_p50`, label: `${l.name} p50`, color: colors[i % colors.length], width: 2 },
              { key: `${l.name}_p15`, label: `${l.name} p15`, color: colors[i % colors.length], width: 0.75, dash: [3, 3] },
              { key: `${l.name}_p85`, label: `${l.name} p85`, color: colors[i % colors.length], width: 0.75, dash: [3, 3] },
            ]);
            inst.state.charts[side] = new CurveChart(box, { title: '', auto: true, yLabel: 'pre-activation value', series, height: 200 });
          }
          inst.state.charts[side].add(
            step,
            Object.fromEntries(h.layers.flatMap((l) => [[`${l.name}_p15`, l.p15], [`${l.name}_p50`, l.p50], [`${l.name}_p85`, l.p85]])),
          );
        }
      }
      inst.state.pending = [];
      Object.values(inst.state.charts).forEach((c) => c.render());
    },
  },
  'lr-sweep': {
    title: 'Accuracy per learning rate, A and B',
    caption: 'The latest validation accuracy of A and B at each learning rate tried in this page (change lr and train to add one).',
    init: (inst) => ({
      byLr: new Map(),
      chart: new BarChart(inst.body, {
        title: '',
        xLabel: 'learning rate',
        yLabel: 'val. accuracy',
        names: [],
        series: [
          { label: 'A', color: A.train },
          { label: 'B', color: B.train },
        ],
      }),
      dirty: false,
    }),
    probe(inst, msg) {
      const lrA = inst.ctx.state().lr;
      const entry = inst.state.byLr.get(lrA) ?? {};
      entry.a = msg.val_accuracy;
      if (msg.twin) entry.b = msg.twin.val_accuracy;
      inst.state.byLr.set(lrA, entry);
      inst.state.dirty = true;
    },
    render(inst) {
      if (!inst.state.dirty) return;
      inst.state.dirty = false;
      const lrs = [...inst.state.byLr.keys()].sort((p, q) => p - q);
      // category names: the lr values, in order
      const axis = inst.state.chart.plot.axes[0];
      axis.values = (u, ticks) => ticks.map((t) => (lrs[t] !== undefined ? String(lrs[t]) : ''));
      axis.splits = () => lrs.map((_, i) => i);
      inst.state.chart.draw(
        lrs.map((_, i) => i),
        [lrs.map((lr) => inst.state.byLr.get(lr).a ?? null), lrs.map((lr) => inst.state.byLr.get(lr).b ?? null)],
      );
    },
  },
  'dropout-mask': {
    deferred: true,
    title: 'The dropout mask on one example',
    caption: 'The activation map entering dropout, the mask of this step (white = kept), and what goes on (kept × 1/(1−p) when inverted).',
    instruments(inst, msg) {
      const rows = [];
      for (const side of ['a', 'b']) {
        const h = hdr(msg, side, 'dropout-mask');
        if (!h) continue;
        const { input, mask, output } = h;
        const { h: hh, w } = planes(h.shape);
        rows.push({
          label: inst.ctx.labels[side],
          tiles: [
            { label: 'input', data: input, h: hh, w },
            { label: `mask (kept ${Math.round(h.kept_share * 100)}%)`, data: mask, h: hh, w },
            { label: 'output', data: output, h: hh, w },
          ],
        });
        if (side === 'a') {
          inst.note.textContent = `${h.layer}: p = ${fmt(h.p)}, ${h.scaling} scaling; mean input ${fmt(h.mean_in)}, with the mask ${fmt(h.mean_train)}, at test ${fmt(h.mean_eval)}.`;
        }
      }
      if (rows.length === 0) return false;
      imageRows(inst, rows);
    },
  },
  'train-vs-val': {
    title: 'Train loss (with dropout) vs validation loss (without)',
    caption: 'Training batches run with dropout on; validation runs in eval mode, so train loss often sits above validation loss.',
    init: (inst) => ({
      curves: new StepCurves(inst.body, {
        log: true,
        yLabel: 'loss (nats)',
        series: abSeries([
          { key: 'train', label: 'train (dropout on)', color: A.train, colorB: B.train },
          { key: 'val', label: 'validation (eval)', color: A.val, colorB: B.val, width: 2 },
        ]),
      }),
    }),
    train(inst, msg) {
      inst.state.curves.add(msg.step, { a_train: msg.loss, b_train: msg.twin?.loss });
    },
    probe(inst, msg) {
      inst.state.curves.add(msg.step, { a_val: msg.val_loss, b_val: msg.twin?.val_loss });
    },
    render: (inst) => inst.state.curves.render(),
  },
  'test-time': {
    title: 'Dropout at test time: three ways',
    caption: 'Validation accuracy with model.eval() (inverted dropout), with masks left on (forgot eval()), and classic dropout without its ×(1−p).',
    init: (inst) => ({
      chart: new BarChart(inst.body, {
        title: '',
        xLabel: 'test-time mode',
        yLabel: 'accuracy',
        names: ['model.eval()', 'forgot eval()', 'classic, no ×(1−p)'],
        series: [
          { label: 'A', color: A.train },
          { label: 'B', color: B.train },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const { a, b } = chartPer(msg, 'test-time');
      if (!a) return false;
      const keys = ['eval', 'forgot_eval', 'classic_no_rescale'];
      inst.state.data = [keys.map((k) => a[k]), keys.map((k) => b?.[k] ?? null)];
    },
    render(inst) {
      if (!inst.state.data) return;
      inst.state.chart.draw([0, 1, 2], inst.state.data);
      inst.state.data = null;
    },
  },
  'mc-dropout': {
    title: 'Monte-Carlo dropout vs weight scaling',
    caption: 'Accuracy of averaging K stochastic passes (K = 1…50) against the one deterministic weight-scaled pass (Srivastava et al., Fig. 11).',
    init: (inst) => ({
      chart: new CurveChart(inst.body, {
        title: '',
        percent: true,
        xLabel: 'K (stochastic passes averaged)',
        yLabel: 'accuracy',
        height: 200,
        series: [
          { key: 'mc', label: 'A MC average', color: A.train, width: 2, points: true },
          { key: 'ws', label: 'A weight scaling', color: A.val, dash: [6, 3] },
          { key: 'mcb', label: 'B MC average', color: B.train, width: 2 },
          { key: 'wsb', label: 'B weight scaling', color: B.val, dash: [6, 3] },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const { a, b } = chartPer(msg, 'mc-dropout');
      if (!a) return false;
      const ks = a.accuracy_by_k.map((_, i) => i + 1);
      const line = (h) => ks.map(() => h?.weight_scaling_accuracy ?? null);
      inst.state.data = [ks, [...a.accuracy_by_k], line(a), b ? [...b.accuracy_by_k] : ks.map(() => null), line(b)];
      inst.note.textContent = `A: MC (K = ${ks.length}) ${fmt(a.mc_accuracy * 100)}% vs weight scaling ${fmt(a.weight_scaling_accuracy * 100)}%; agreement ${fmt(a.agreement * 100)}%, mean entropy ${fmt(a.mean_entropy)} nats.`;
    },
    render(inst) {
      if (!inst.state.data) return;
      const ys = inst.state.data.slice(1);
      const all = ys.flat().filter(Number.isFinite);
      const lo = Math.min(...all);
      const hi = Math.max(...all);
      inst.state.chart.plot.setScale('y', { min: Math.max(0, lo - 0.02), max: Math.min(1, hi + 0.02) });
      inst.state.chart.plot.setData(inst.state.data);
      inst.state.data = null;
    },
  },
  'inception-diagram': {
    title: 'Inception block: naive vs 1×1 reductions',
    caption: 'Parameters and FLOPs of the inception block(s) with naive 3×3 / 5×5 branches and with 1×1 reductions before them.',
    init: (inst) => ({
      chart: new BarChart(inst.body, {
        title: '',
        log: true,
        xLabel: 'count',
        yLabel: 'number (log)',
        names: ['parameters', 'FLOPs per example'],
        series: [
          { label: 'naive', color: '#94a3b8' },
          { label: 'with 1×1 reductions', color: A.train },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const a = hdr(msg, 'a', 'inception-counts');
      if (!a) return false;
      inst.state.data = [
        [a.params_naive, a.flops_naive],
        [a.params_reduced, a.flops_reduced],
      ];
      const blocks = (a.blocks ?? [])
        .map((bl) => `${bl.layer}: ${bl.naive?.params} → ${bl.reduced?.params} params`)
        .join('; ');
      inst.note.textContent = `Params ${a.params_naive} → ${a.params_reduced} (${fmt(a.params_naive / a.params_reduced, 2)}×), FLOPs ${a.flops_naive} → ${a.flops_reduced} (${fmt(a.flops_naive / a.flops_reduced, 2)}×). ${blocks}`;
    },
    render(inst) {
      if (!inst.state.data) return;
      inst.state.chart.draw([0, 1], inst.state.data);
      inst.state.data = null;
    },
  },
  'branch-maps': {
    deferred: true,
    title: 'Per-branch activation maps',
    caption: "The inception block's output on one example, each branch's channels averaged into one map (gray: low to high).",
    instruments(inst, msg) {
      const rows = [];
      for (const side of ['a', 'b']) {
        const h = hdr(msg, side, 'branch-maps');
        if (!h) continue;
        const maps = h.maps;
        const { h: hh, w } = planes(h.shape);
        rows.push({
          label: inst.ctx.labels[side],
          tiles: h.branches.map((br) => {
            const mean = new Float32Array(hh * w);
            for (let c = br.start; c < br.end; c++) for (let i = 0; i < hh * w; i++) mean[i] += maps[c * hh * w + i] / (br.end - br.start);
            return { label: `${br.name} (${br.end - br.start} ch)`, data: mean, h: hh, w };
          }),
        });
      }
      if (rows.length === 0) return false;
      imageRows(inst, rows);
    },
  },
  'class-maps': {
    deferred: true,
    title: 'Per-class maps before global average pooling',
    caption: "The NiN head's class maps on one example (diverging, white = 0, one scale); global average pooling turns each into its score.",
    instruments(inst, msg) {
      const rows = [];
      for (const side of ['a', 'b']) {
        const h = hdr(msg, side, 'class-maps');
        if (!h) continue;
        const maps = h.maps;
        const { h: hh, w } = planes(h.shape);
        const scale = maxAbs(maps);
        const k = h.shape.length > 2 ? h.shape.at(-3) : 1;
        rows.push({
          label: inst.ctx.labels[side],
          tiles: [...Array(k).keys()].map((c) => ({
            label: `${h.classes?.[c] ?? c}: ${fmt(h.scores?.[c], 2)}`,
            data: maps,
            h: hh,
            w,
            offset: c * hh * w,
            scale,
          })),
        });
      }
      if (rows.length === 0) return false;
      imageRows(inst, rows);
    },
  },
  checkerboard: {
    deferred: true,
    title: 'Checkerboard score (Odena et al.)',
    caption: "Share of the decoder output's spectral energy at the stride frequency, over steps; the outputs at step 0 and now.",
    init(inst) {
      const chartBox = el('div');
      const images = el('div');
      inst.body.append(chartBox, images);
      return {
        images,
        first: {},
        curves: new StepCurves(chartBox, {
          yLabel: 'checkerboard score (share)',
          series: abSeries([{ key: 's', label: 'score', color: A.train, colorB: B.train, width: 2 }]),
        }),
      };
    },
    instruments(inst, msg) {
      const a = hdr(msg, 'a', 'checkerboard');
      const b = hdr(msg, 'b', 'checkerboard');
      if (!a) return false;
      inst.state.curves.add(msg.step, { a_s: a.score, b_s: b?.score });
      const rows = [];
      for (const [side, h] of [['a', a], ['b', b]]) {
        if (!h) continue;
        const out = h.output;
        const { h: hh, w } = planes(h.shape);
        // the output at step 0 is kept: the pattern is there before any training
        inst.state.first[side] ??= { data: Float32Array.from(out.subarray(0, hh * w)), step: msg.step };
        rows.push({
          label: inst.ctx.labels[side],
          tiles: [
            { label: `step ${inst.state.first[side].step}`, data: inst.state.first[side].data, h: hh, w },
            { label: `step ${msg.step}`, data: out, h: hh, w },
          ],
        });
      }
      const keep = inst.body.firstChild;
      imageRows(inst, rows);
      inst.body.prepend(keep);
    },
    render: (inst) => inst.state.curves.render(),
  },
  'overlap-toy': {
    title: 'The 1-D overlap toy',
    caption: 'How many kernel taps of a stride-s transposed convolution land on each output pixel: uneven when k is not a multiple of s.',
    init: (inst) => ({
      chart: new BarChart(inst.body, {
        title: '',
        xLabel: 'output pixel',
        yLabel: 'kernel taps',
        series: [
          { label: 'A', color: A.train },
          { label: 'B', color: B.train },
        ],
      }),
      data: null,
    }),
    instruments(inst, msg) {
      const { a, b } = chartPer(msg, 'overlap');
      if (!a) return false;
      const n = Math.max(a.counts.length, b?.counts.length ?? 0);
      inst.state.data = [[...Array(n).keys()], [...a.counts], b ? [...b.counts] : Array(n).fill(null)];
      inst.note.textContent = `A: kernel ${a.kernel}, stride ${a.stride}${b ? `; B: kernel ${b.kernel}, stride ${b.stride}` : ''}.`;
    },
    render(inst) {
      if (!inst.state.data) return;
      inst.state.chart.draw(...[inst.state.data[0], inst.state.data.slice(1)]);
      inst.state.data = null;
    },
  },
  switches: {
    deferred: true,
    title: "Max-pooling switches",
    caption: "The pooled layer's input (channel 0, gray) with the argmax position of each pooling window in red: where unpooling puts values back.",
    instruments(inst, msg) {
      const rows = [];
      for (const side of ['a', 'b']) {
        const h = hdr(msg, side, 'switches');
        if (!h) continue;
        const [input, argmax] = [h.input, h.switches];
        const { h: hh, w } = planes(h.shape);
        rows.push({ label: inst.ctx.labels[side], tiles: [{ label: `${h.layer}: input + switches`, data: input, h: hh, w, marks: new Set(Array.from(argmax, Math.round)) }] });
      }
      if (rows.length === 0) return false;
      imageRows(inst, rows);
    },
  },
  'decoder-stages': {
    deferred: true,
    title: 'Decoder activations per stage',
    caption: "Each decoder stage's output on one example, averaged over channels (gray: low to high), A above B.",
    instruments(inst, msg) {
      const rows = [];
      for (const side of ['a', 'b']) {
        const h = hdr(msg, side, 'decoder-stages');
        if (!h) continue;
        rows.push({
          label: inst.ctx.labels[side],
          tiles: h.stages.map((s) => {
            const { h: hh, w } = planes(s.shape);
            return { label: `${s.layer} (${s.kind}) ${s.shape.join('×')}`, data: s.map, h: hh, w };
          }),
        });
      }
      if (rows.length === 0) return false;
      imageRows(inst, rows);
    },
  },
  'val-metrics': {
    title: 'Validation metric, A and B',
    caption: "The task's validation metric over steps (accuracy for classification), measured without dropout (eval mode).",
    init: (inst) => ({
      curves: new StepCurves(inst.body, {
        percent: true,
        yLabel: 'validation',
        series: abSeries([{ key: 'm', label: 'validation', color: A.val, colorB: B.val, width: 2 }]),
      }),
    }),
    probe(inst, msg) {
      const key = inst.ctx.metricKey();
      const pick = (p) => (key === 'accuracy' ? p?.val_accuracy : p?.metrics?.[key]);
      inst.state.curves.add(msg.step, { a_m: pick(msg), b_m: pick(msg.twin) });
    },
    render: (inst) => inst.state.curves.render(),
  },
};

/**
 * The instruments of a chapter, in its order, in `container`. ctx: {labels: {a, b},
 * state: () => the page state, metricKey: () => the task's headline metric}.
 * Keeps the latest probe headers of A and B (`latest`) for the live answer.
 */
export class Instruments {
  constructor(container, names, ctx) {
    this.container = container;
    this.ctx = ctx;
    this.list = names.filter((n) => n in DRAWERS).map((n) => new Instrument(n, DRAWERS[n], ctx));
    this.latest = { a: {}, b: {} };
    this.errors = {};
    container.replaceChildren(...this.list.map((i) => i.root));
  }

  /** The probes these instruments need (chapters.js INSTRUMENT_PROBES). */
  probes() {
    return [...new Set(this.list.map((i) => INSTRUMENT_PROBES[i.name]).filter(Boolean))];
  }

  feed(kind, msg) {
    if (kind === 'instruments') {
      Object.assign(this.latest.a, msg.a ?? {});
      Object.assign(this.latest.b, msg.b ?? {});
      this.errors = msg.errors ?? {};
      for (const inst of this.list) {
        const probe = INSTRUMENT_PROBES[inst.name];
        const why = probe ? this.errors[probe] : null; // {a?, b?}
        inst.note.dataset.error = why ? 'true' : '';
        if (why) {
          inst.note.textContent = `Not measured: ${['a', 'b']
            .filter((side) => why[side])
            .map((side) => `${this.ctx.labels[side] ?? side.toUpperCase()}: ${why[side]}`)
            .join('; ')}`;
        }
      }
    }
    for (const inst of this.list) inst.feed(kind, msg);
  }

  /** Milliseconds until an instrument with something new may redraw (each at most every
   * `interval` ms): 0 = now, Infinity = nothing to draw. */
  nextDue(interval) {
    const now = performance.now();
    let wait = Infinity;
    for (const inst of this.list) {
      if (inst.dirty) wait = Math.min(wait, Math.max(0, (inst.drawnAt ?? -Infinity) + interval - now));
    }
    return wait;
  }

  /** Draws ONE due instrument (they take turns), so that no frame grows into a long task:
   * a frame draws one chart or one row of canvases, the page's job queue the rest. */
  renderOne(interval) {
    const now = performance.now();
    const n = this.list.length;
    this.cursor = this.cursor ?? 0;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const inst = this.list[i];
      if (!inst.dirty || (inst.drawnAt ?? -Infinity) + interval > now) continue;
      inst.drawnAt = now;
      inst.render();
      this.cursor = (i + 1) % n;
      return;
    }
  }
}
