// Training curves, drawn by uPlot. One chart = one metric, a few series (train,
// validation, ...) sharing the step axis. The page only appends points; uPlot draws. Long
// runs are decimated so a redraw stays a few milliseconds. BarChart draws per-bin or
// per-channel values (histograms, batch-norm statistics) as uPlot bars.
import uPlot from '../../vendor/uPlot.esm.js';

const MAX_POINTS = 3000;
const HEIGHT = 220;

/** The default series: train (a line) and validation (a line with points). */
const TRAIN_VAL = [
  { key: 'train', label: 'train', color: '#2563eb', width: 1.5 },
  { key: 'val', label: 'validation', color: '#ea580c', width: 2, points: true },
];

/** Keeps a uPlot chart as wide as its container (resizing on the next frame, not inside the observer). */
function followWidth(plot, container, height) {
  let queued = false;
  new ResizeObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      const width = Math.max(200, container.clientWidth);
      if (width !== plot.width) plot.setSize({ width, height });
    });
  }).observe(container);
}

export class CurveChart {
  /**
   * @param {HTMLElement} container
   * @param {{title: string, log?: boolean, percent?: boolean,
   *          series?: {key: string, label: string, color: string, width?: number, points?: boolean,
   *                    dash?: number[]}[]}} options
   */
  constructor(container, { title, log = false, percent = false, series = TRAIN_VAL, xLabel = 'step', yLabel, auto = false, height = HEIGHT }) {
    this.container = container;
    this.percent = percent;
    this.log = log;
    this.keys = series.map((s) => s.key);
    this.xs = [];
    this.ys = series.map(() => []);
    this.dirty = false;

    const fmt = (v) => (v == null ? '–' : percent ? `${(v * 100).toFixed(1)}%` : v.toPrecision(3));
    const opts = {
      title,
      width: Math.max(200, container.clientWidth),
      height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false },
        // auto: the data's range (instruments of any unit); else [0, 1] (shares, accuracies)
        y: log ? { distr: 3 } : auto ? {} : { range: [0, 1] },
      },
      axes: [
        { label: xLabel, stroke: '#475569', grid: { stroke: '#e2e8f0' } },
        {
          ...(yLabel ? { label: yLabel } : {}),
          stroke: '#475569',
          grid: { stroke: '#e2e8f0' },
          size: 56,
          values: (u, ticks) => ticks.map((t) => (t == null ? '' : percent ? `${Math.round(t * 100)}%` : String(+t.toPrecision(2)))),
        },
      ],
      series: [
        { label: xLabel },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          value: (u, v) => fmt(v),
          spanGaps: true,
          ...(s.dash ? { dash: s.dash } : {}),
          ...(s.points ? { points: { show: true, size: 5, fill: s.color } } : {}),
        })),
      ],
    };
    this.plot = new uPlot(opts, [[], ...series.map(() => [])], container);
    followWidth(this.plot, container, height);
  }

  clean(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    if (this.log && v <= 0) return null;
    return v;
  }

  /** Adds one point: `values` maps series keys to numbers (missing or null: no point). Points at the same step merge. */
  add(step, values) {
    const vs = this.keys.map((k) => this.clean(values[k]));
    if (vs.every((v) => v === null)) return;
    const last = this.xs.length - 1;
    if (last >= 0 && this.xs[last] === step) {
      vs.forEach((v, i) => {
        if (v !== null) this.ys[i][last] = v;
      });
    } else if (last >= 0 && step < this.xs[last]) {
      // behind the last step (a new run beside a kept reference): insert in order
      let lo = 0;
      let hi = this.xs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.xs[mid] < step) lo = mid + 1;
        else hi = mid;
      }
      if (this.xs[lo] === step) {
        vs.forEach((v, i) => {
          if (v !== null) this.ys[i][lo] = v;
        });
      } else {
        this.xs.splice(lo, 0, step);
        vs.forEach((v, i) => this.ys[i].splice(lo, 0, v));
      }
    } else {
      this.xs.push(step);
      vs.forEach((v, i) => this.ys[i].push(v));
    }
    if (this.xs.length > MAX_POINTS) this.decimate();
    this.dirty = true;
  }

  /** Halves the resolution: pairs of points become one (the mean of what each pair has). */
  decimate() {
    const xs = [];
    const ys = this.ys.map(() => []);
    for (let i = 0; i < this.xs.length; i += 2) {
      const j = Math.min(i + 1, this.xs.length - 1);
      xs.push(this.xs[j]);
      this.ys.forEach((y, s) => {
        const both = [y[i], y[j]].filter((v) => v !== null);
        ys[s].push(both.length ? both.reduce((a, b) => a + b, 0) / both.length : null);
      });
    }
    this.xs = xs;
    this.ys = ys;
  }

  clear() {
    this.xs = [];
    this.ys = this.ys.map(() => []);
    this.dirty = true;
  }

  /** The points of one series as [[step, value], ...] (what it draws, for tests and references). */
  points(key) {
    const ys = this.ys[this.keys.indexOf(key)] ?? [];
    return this.xs.map((x, i) => [x, ys[i]]).filter(([, v]) => v !== null);
  }

  /**
   * Clears the chart but keeps some series as a reference: `keep` maps a series key to the
   * (faded) key its points move to; e.g. {train: 'ref_train'} keeps the previous run visible.
   */
  clearKeeping(keep) {
    const kept = Object.entries(keep).map(([from, to]) => [to, this.points(from)]);
    if (kept.every(([, pts]) => pts.length === 0)) {
      // the run drew nothing: keep the older reference, clear the rest
      const refs = new Set(Object.values(keep));
      this.ys = this.ys.map((y, i) => (refs.has(this.keys[i]) ? y : y.map(() => null)));
      this.dirty = true;
      return;
    }
    this.clear();
    for (const [to, pts] of kept) for (const [x, v] of pts) this.add(x, { [to]: v });
  }

  /** Shows or hides a series (and its legend entry). */
  show(key, on) {
    const i = this.keys.indexOf(key);
    if (i >= 0 && this.plot.series[i + 1].show !== on) this.plot.setSeries(i + 1, { show: on });
  }

  /** Redraws if anything changed; called once per animation frame at most. */
  render() {
    if (!this.dirty) return;
    this.dirty = false;
    this.plot.setData([this.xs, ...this.ys]);
  }
}

/**
 * Bars over a numeric x axis (bin centres or channel indices), one or more series side by
 * side, drawn by uPlot's bars path builder.
 */
export class BarChart {
  /**
   * @param {HTMLElement} container
   * @param {{title: string, xLabel: string, height?: number, log?: boolean,
   *          series: {label: string, color: string}[]}} options
   */
  constructor(container, { title, xLabel, yLabel, names, height = 180, log = false, series }) {
    this.container = container;
    this.height = height;
    const bars = uPlot.paths.bars({ size: [0.92, 200], align: 0 });
    const fmt = (v) => (v == null ? '–' : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(3)));
    this.plot = new uPlot(
      {
        title,
        width: Math.max(200, container.clientWidth),
        height,
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        scales: {
          // half a bar of room at each end, and bars that grow from 0
          x: {
            time: false,
            range: (u, min, max) => {
              const half = u.data[0].length > 1 ? (max - min) / (u.data[0].length - 1) / 2 : 0.5;
              return [min - half, max + half];
            },
          },
          y: log ? { distr: 3 } : { range: (u, min, max) => [Math.min(0, min), Math.max(0, max) * 1.05 || 1] },
        },
        axes: [
          {
            label: xLabel,
            stroke: '#475569',
            grid: { show: false },
            // names: a label per integer x (categories); else as many decimals as the tick spacing needs
            ...(names ? { splits: () => names.map((_, i) => i) } : {}),
            values: names
              ? (u, ticks) => ticks.map((t) => names[t] ?? '')
              : (u, ticks, axis, space, incr) => ticks.map((t) => t.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(incr)))))),
          },
          { ...(yLabel ? { label: yLabel } : {}), stroke: '#475569', grid: { stroke: '#e2e8f0' }, size: 56, values: (u, ticks) => ticks.map(fmt) },
        ],
        series: [
          { label: xLabel, value: (u, v) => fmt(v) },
          ...series.map((s, i) => ({
            label: s.label,
            fill: `${s.color}cc`,
            stroke: s.color,
            width: 1,
            paths: series.length > 1 ? uPlot.paths.bars({ size: [0.4, 40], align: i === 0 ? -1 : 1 }) : bars,
            points: { show: false },
            value: (u, v) => fmt(v),
          })),
        ],
      },
      [[], ...series.map(() => [])],
      container,
    );
    followWidth(this.plot, container, height);
  }

  /** @param {number[]} xs  @param {number[][]} ys one array per series  @param {string} [title] a new title */
  draw(xs, ys, title) {
    if (title !== undefined) this.plot.root.querySelector('.u-title').textContent = title;
    this.plot.setData([xs, ...ys]);
  }
}
