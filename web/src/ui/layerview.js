// The per-layer views of one chosen layer: its output (activation maps) for one validation
// example, its kernels (conv layers), a histogram of its weights with the share of exact
// zeros and near-zeros (what L1 does), and the running statistics of a batch-norm layer.
// Everything arrives in one `view-result` from the worker; drawing is canvases and uPlot.
import { BarChart } from './charts.js';
import { FilterView } from './filters.js';
import { fmtShape } from './editor.js';

// Small canvases painted with putImageData are cheaper on the CPU: a GPU-backed canvas
// uploads on every put and draw (16 maps of 64×64 took 40 ms in one frame on SwiftShader).
const SOFT = { willReadFrequently: true };

const NEAR_ZERO = 1e-3;
const $in = (root, testid) => root.querySelector(`[data-testid="${testid}"]`);
const percent = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '–');

export class LayerViews {
  /** @param {HTMLElement} root  the views panel (holds the data-testid elements below) */
  constructor(root) {
    this.root = root;
    this.note = $in(root, 'view-note');
    this.image = $in(root, 'example-image');
    this.imageCaption = root.querySelector('.example-caption');
    this.maps = new MapView($in(root, 'activations'));
    this.filterBox = root.querySelector('.view-filters');
    this.filters = new FilterView($in(root, 'layer-filters'), { tile: 22, maxTiles: 256, prompt: 'Kernels appear once the model is built.' });
    this.weightBox = root.querySelector('.view-weights');
    this.histogramBox = $in(root, 'weights-histogram');
    this.histogram = new BarChart($in(root, 'weights-histogram'), {
      title: 'Histogram of the weights',
      xLabel: 'weight',
      series: [{ label: 'count', color: '#2563eb' }],
    });
    this.weightCaption = root.querySelector('.weights-caption');
    this.bnBox = root.querySelector('.view-bn');
    this.bn = new BarChart($in(root, 'bn-stats'), {
      title: 'Running statistics per channel',
      xLabel: 'channel',
      series: [
        { label: 'mean', color: '#2563eb' },
        { label: 'var', color: '#ea580c' },
      ],
    });
  }

  clear() {
    this.note.textContent = 'The views appear once the model is built.';
    this.maps.clear();
    this.filters.clear();
    for (const id of ['zero-share', 'near-zero-share', 'model-zero-share', 'weights-stats']) $in(this.root, id).textContent = '–';
  }

  /**
   * @param {object} v  a view-result message (see worker.js)
   * @param {{task?: string, classNames?: string[] | null}} [names]  the task and its class
   *   names (from the outputs), so the example's label reads "circle", not "label 1"
   */
  draw(v, names = {}) {
    for (const part of this.parts(v, names)) part();
  }

  /**
   * The drawing of `v` as a few parts, each a few milliseconds, for the page to spread over
   * animation frames: the input and its maps, the kernels, the weights, then the note (last,
   * so a note naming step N means every part of step N is drawn).
   */
  parts(v, { task = 'classify', classNames = null } = {}) {
    return [
      () => {
        this.drawInput(v, task, classNames);
        if (v.activation) this.maps.draw(v.activation, v.kind);
        else this.maps.clear(v.missing.includes('activations') ? 'needs activations()' : 'no output recorded for this layer');
      },
      () => {
        this.filterBox.hidden = v.kind !== 'conv2d';
        if (v.filters) this.filters.draw(v.filters, v.layer);
      },
      () => {
        this.drawWeights(v);
        this.bnBox.hidden = !v.bn;
        if (v.bn) {
          const channels = Array.from(v.bn.mean, (_, i) => i);
          this.bn.draw(channels, [Array.from(v.bn.mean), Array.from(v.bn.var)]);
        }
      },
      () => {
        const missing = v.missing.length ? ` This build of the wasm core lacks ${v.missing.map((m) => `${m}()`).join(', ')}, so those views are empty.` : '';
        this.note.textContent = `Layer ${v.layer} (${v.kind}) at step ${v.step}, validation example ${v.example}.${missing}`;
      },
    ];
  }

  drawInput(v, task, classNames) {
    if (v.image && v.input?.[0] === 3) {
      drawRgb(this.image, v.image, v.input[1], v.input[2]);
      this.imageCaption.textContent = exampleCaption(v, task, classNames);
    } else if (v.image) {
      const [h, w] = v.input ? v.input.slice(1) : [28, 28];
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of v.image) {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      drawGray(this.image, v.image, h, w, lo, hi);
      this.imageCaption.textContent = exampleCaption(v, task, classNames);
    }
  }

  drawWeights(v) {
    const w = v.weights;
    const set = (id, text, title = '') => {
      const node = $in(this.root, id);
      node.textContent = text;
      node.title = title;
    };
    if (!w) {
      for (const id of ['zero-share', 'near-zero-share', 'model-zero-share', 'weights-stats']) set(id, '–');
      this.weightCaption.textContent = v.missing.includes('weights') ? 'Needs weights() from the wasm core.' : '';
      this.histogramBox.hidden = true;
      return;
    }
    set('model-zero-share', `${percent(w.all.zeros, w.all.count)} · ${percent(w.all.near_zeros, w.all.count)}`, `exact zeros · |w| < ${NEAR_ZERO}, over all ${w.all.count} conv and linear weights`);
    const weights = w.params.filter((p) => p.group === 'conv' || p.group === 'linear');
    const shown = weights.length ? weights : w.params;
    // exact and near zeros are what L1 makes of conv / linear weights; for batch norm's γ
    // and β (which no regularizer targets by default) they mean nothing: not shown
    for (const id of ['zero-share', 'near-zero-share']) $in(this.root, id).parentElement.hidden = weights.length === 0;
    this.histogramBox.hidden = shown.length === 0;
    if (shown.length === 0) {
      for (const id of ['zero-share', 'near-zero-share', 'weights-stats']) set(id, '–');
      this.weightCaption.textContent = `${v.kind} has no parameters.`;
      return;
    }
    const sum = (key) => shown.reduce((a, p) => a + p.stats[key], 0);
    const count = sum('count');
    set('zero-share', percent(sum('zeros'), count), `${sum('zeros')} of ${count} are exactly 0`);
    set('near-zero-share', percent(sum('near_zeros'), count), `${sum('near_zeros')} of ${count} have |w| < ${NEAR_ZERO}`);
    const l2 = Math.sqrt(shown.reduce((a, p) => a + p.stats.l2_norm ** 2, 0));
    const min = Math.min(...shown.map((p) => p.stats.min));
    const max = Math.max(...shown.map((p) => p.stats.max));
    set('weights-stats', `${count.toLocaleString()} · ‖w‖ ${l2.toPrecision(3)} · [${min.toPrecision(2)}, ${max.toPrecision(2)}]`, 'count · L2 norm · [min, max]');

    const first = shown[0];
    const { lo, hi, counts } = first.stats.histogram;
    const width = (hi - lo) / Math.max(1, counts.length);
    this.histogram.draw(
      counts.map((_, i) => lo + (i + 0.5) * width),
      [counts],
      `Histogram of ${first.name}`,
    );
    const others = shown.length > 1 ? ` (the histogram shows the first of its ${shown.length} tensors)` : '';
    this.weightCaption.textContent = `${first.name}: ${fmtShape(first.shape)}${others}`;
  }
}

/** The chosen example's caption: its class by name where the task has names (a scene:
 * the class of its first shape). MNIST classification's names are its digits. */
export function exampleCaption(v, task, classNames) {
  const name = classNames?.[v.label] ?? String(v.label);
  if (task === 'detect' || task === 'segment') return `example ${v.example} · a scene; first shape: ${name}`;
  if (task === 'classify' && !classNames) return `example ${v.example} · label ${name}`;
  return `example ${v.example} · ${name}`;
}

/** A layer's output for one example: a tile per channel (C,H,W) or a strip of cells (K). */
class MapView {
  constructor(container) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'maps-canvas';
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    container.replaceChildren(this.canvas, this.caption);
    this.scratch = document.createElement('canvas');
    this.clear();
  }

  clear(why = 'Activations appear once the model is built.') {
    this.canvas.getContext('2d', SOFT).clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.caption.textContent = why;
  }

  draw({ shape, data }, kind) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of data) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    const signed = lo < 0;
    const flat = shape.length === 1;
    const [c, h, w] = flat ? [1, 1, shape[0]] : shape;
    const cols = flat ? Math.min(w, 32) : Math.min(c, 8);
    const cell = flat ? 12 : Math.max(28, Math.min(56, h * 2));
    const tiles = flat ? Math.ceil(w / cols) : Math.ceil(c / cols); // rows
    const gap = flat ? 1 : 4;
    const cssW = cols * cell + (cols - 1) * gap;
    const cssH = tiles * cell + (tiles - 1) * gap;
    const dpr = window.devicePixelRatio || 1;
    // resize (which reallocates the canvas) only when the size changes
    if (this.canvas.width !== Math.round(cssW * dpr) || this.canvas.height !== Math.round(cssH * dpr)) {
      this.canvas.width = Math.round(cssW * dpr);
      this.canvas.height = Math.round(cssH * dpr);
      this.canvas.style.width = `${cssW}px`;
    }
    const ctx = this.canvas.getContext('2d', SOFT);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.imageSmoothingEnabled = false;
    const scale = Math.max(Math.abs(lo), Math.abs(hi), 1e-12);
    const colour = (x) => (signed ? diverging(x / scale) : gray(x / scale));
    // the maps' pixels through a lookup table of LEVELS colours over [-scale, scale] (or
    // [0, scale]): no colour computed, no array made, per pixel (16 maps of 64×64 took 60 ms)
    const lut = colourTable(signed);
    const top = LEVELS - 1;
    const index = signed ? (x) => Math.round(((x / scale + 1) / 2) * top) : (x) => Math.round((x / scale) * top);
    if (flat) {
      for (let i = 0; i < w; i++) {
        const [r, g, b] = colour(data[i]);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect((i % cols) * (cell + gap), Math.floor(i / cols) * (cell + gap), cell, cell);
      }
      let arg = 0;
      for (let i = 1; i < w; i++) if (data[i] > data[arg]) arg = i;
      this.caption.textContent = `${w} values in [${lo.toPrecision(2)}, ${hi.toPrecision(2)}]; the largest is #${arg}`;
      return;
    }
    if (this.scratch.width !== w || this.scratch.height !== h) {
      this.scratch.width = w;
      this.scratch.height = h;
    }
    const sctx = this.scratch.getContext('2d', SOFT);
    const image = sctx.createImageData(w, h);
    const px = image.data;
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) {
        const k = 3 * Math.max(0, Math.min(top, index(data[ch * h * w + i])));
        px[i * 4] = lut[k];
        px[i * 4 + 1] = lut[k + 1];
        px[i * 4 + 2] = lut[k + 2];
        px[i * 4 + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      const x = (ch % cols) * (cell + gap);
      const y = Math.floor(ch / cols) * (cell + gap);
      ctx.drawImage(this.scratch, x, y, cell, cell);
      ctx.strokeStyle = '#cbd5e1';
      ctx.strokeRect(x + 0.5, y + 0.5, cell - 1, cell - 1);
    }
    const legend = signed ? 'blue negative, orange positive' : 'dark high';
    this.caption.textContent = `${kind}: ${c} maps of ${h}×${w}, values in [${lo.toPrecision(2)}, ${hi.toPrecision(2)}] — ${legend}, one scale for all maps`;
  }
}

/** Paints a (3, H, W) image with values in [0, 1]. */
function drawRgb(canvas, data, h, w) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', SOFT);
  const image = ctx.createImageData(w, h);
  const to = (x) => Math.max(0, Math.min(255, Math.round(x * 255)));
  for (let i = 0; i < h * w; i++) image.data.set([to(data[i]), to(data[h * w + i]), to(data[2 * h * w + i]), 255], i * 4);
  ctx.putImageData(image, 0, 0);
}

/** Paints a single-channel image (values lo..hi) as dark ink on light. */
function drawGray(canvas, data, h, w, lo, hi) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', SOFT);
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = gray((data[i] - lo) / Math.max(hi - lo, 1e-12));
    image.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}

const LEVELS = 511;
const tables = new Map();

/** LEVELS colours, [r, g, b] after each other: diverging over -1..1, or gray over 0..1. */
function colourTable(signed) {
  if (!tables.has(signed)) {
    const lut = new Uint8ClampedArray(3 * LEVELS);
    for (let k = 0; k < LEVELS; k++) {
      const t = k / (LEVELS - 1);
      lut.set(signed ? diverging(2 * t - 1) : gray(t), 3 * k);
    }
    tables.set(signed, lut);
  }
  return tables.get(signed);
}

/** 0 -> near white, 1 -> near black. */
function gray(t) {
  const v = Math.round(248 - 233 * Math.max(0, Math.min(1, t)));
  return [v, v, Math.min(255, v + 4)];
}

/** -1 -> blue, 0 -> near white, +1 -> orange. */
function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  const white = [248, 250, 252];
  const end = t < 0 ? [37, 99, 235] : [234, 88, 12];
  const a = Math.abs(t);
  return white.map((x, i) => Math.round(x + (end[i] - x) * a));
}
