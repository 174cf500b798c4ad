// Training curves, drawn by uPlot. One chart = one metric, two series (train, validation)
// sharing the step axis. The page only appends points; uPlot draws. Long runs are
// decimated so a redraw stays a few milliseconds.
import uPlot from '../../vendor/uPlot.esm.js';

const MAX_POINTS = 3000;
const HEIGHT = 220;

const COLORS = {
  train: '#2563eb',
  val: '#ea580c',
};

export class CurveChart {
  /**
   * @param {HTMLElement} container
   * @param {{title: string, log?: boolean, percent?: boolean}} options
   */
  constructor(container, { title, log = false, percent = false }) {
    this.container = container;
    this.percent = percent;
    this.log = log;
    this.xs = [];
    this.train = [];
    this.val = [];
    this.dirty = false;

    const fmt = (v) => (v == null ? '–' : percent ? `${(v * 100).toFixed(1)}%` : v.toPrecision(3));
    const opts = {
      title,
      width: Math.max(200, container.clientWidth),
      height: HEIGHT,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false },
        y: log ? { distr: 3 } : { range: [0, 1] },
      },
      axes: [
        { label: 'step', stroke: '#475569', grid: { stroke: '#e2e8f0' } },
        {
          stroke: '#475569',
          grid: { stroke: '#e2e8f0' },
          size: 56,
          values: (u, ticks) => ticks.map((t) => (t == null ? '' : percent ? `${Math.round(t * 100)}%` : String(+t.toPrecision(2)))),
        },
      ],
      series: [
        { label: 'step' },
        { label: 'train', stroke: COLORS.train, width: 1.5, value: (u, v) => fmt(v), spanGaps: true },
        {
          label: 'validation',
          stroke: COLORS.val,
          width: 2,
          value: (u, v) => fmt(v),
          spanGaps: true,
          points: { show: true, size: 5, fill: COLORS.val },
        },
      ],
    };
    this.plot = new uPlot(opts, [[], [], []], container);
    // Resize on the next frame, not inside the observer (that would loop layout).
    let queued = false;
    new ResizeObserver(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        const width = Math.max(200, this.container.clientWidth);
        if (width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
      });
    }).observe(container);
  }

  clean(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    if (this.log && v <= 0) return null;
    return v;
  }

  /** Adds one point; train or val may be null. Points at the same step merge. */
  add(step, train, val) {
    const t = this.clean(train);
    const v = this.clean(val);
    if (t === null && v === null) return;
    const last = this.xs.length - 1;
    if (last >= 0 && this.xs[last] === step) {
      if (t !== null) this.train[last] = t;
      if (v !== null) this.val[last] = v;
    } else {
      this.xs.push(step);
      this.train.push(t);
      this.val.push(v);
    }
    if (this.xs.length > MAX_POINTS) this.decimate();
    this.dirty = true;
  }

  /** Halves the resolution: pairs of points become one (train averaged, val kept). */
  decimate() {
    const xs = [];
    const train = [];
    const val = [];
    for (let i = 0; i < this.xs.length; i += 2) {
      const j = Math.min(i + 1, this.xs.length - 1);
      const ts = [this.train[i], this.train[j]].filter((x) => x !== null);
      xs.push(this.xs[j]);
      train.push(ts.length ? ts.reduce((a, b) => a + b, 0) / ts.length : null);
      val.push(this.val[j] ?? this.val[i]);
    }
    this.xs = xs;
    this.train = train;
    this.val = val;
  }

  clear() {
    this.xs = [];
    this.train = [];
    this.val = [];
    this.dirty = true;
  }

  /** Redraws if anything changed; called once per animation frame at most. */
  render() {
    if (!this.dirty) return;
    this.dirty = false;
    this.plot.setData([this.xs, this.train, this.val]);
  }
}
