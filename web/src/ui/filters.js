// A conv layer's kernels as small images: one tile per (output, input channel), a
// diverging colour map (blue < 0 < orange, white at exactly 0). With a few input channels,
// each row is one output filter and each column one input channel. Filters over an RGB
// image (3 input channels) are drawn as one colour tile each, the way AlexNet's first layer
// is shown (gray is 0).
//
// The colour scale (the state's `kernel_scale`): 'shared' colours every tile against one
// scale, the largest |w| of the layer seen so far in this run (it never shrinks, so weights
// that L2 shrinks fade towards white and tiles can be compared); 'tile' scales each tile to
// its own max |w| (each pattern at full contrast; magnitudes are lost). The caption says
// which is on.

// Small canvases painted with putImageData are cheaper on the CPU: a GPU-backed canvas
// uploads on every put and draw (16 maps of 64×64 took 40 ms in one frame on SwiftShader).
const SOFT = { willReadFrequently: true };

const GAP = 6;

/**
 * The scale each tile is coloured against: `tiles` tiles of `size` values each from the
 * start of `data`. 'tile': each tile's own max |w|; 'shared': one value for all, the max
 * over the tiles and `held` (the largest seen so far). Never below 1e-12.
 * @returns {{scales: number[], max: number}}  max: the largest |w| of these tiles (to hold)
 */
export function kernelScales(data, tiles, size, mode, held = 0) {
  const own = [];
  let max = 0;
  for (let t = 0; t < tiles; t++) {
    let m = 0;
    for (let i = t * size; i < (t + 1) * size; i++) m = Math.max(m, Math.abs(data[i]));
    own.push(Math.max(m, 1e-12));
    max = Math.max(max, m);
  }
  const shared = Math.max(max, held, 1e-12);
  return { scales: mode === 'shared' ? own.map(() => shared) : own, max };
}

export class FilterView {
  /**
   * @param {HTMLElement} container
   * @param {{tile?: number, maxTiles?: number, prompt?: string, scale?: 'shared' | 'tile'}} options  tile: css pixels per kernel
   */
  constructor(container, { tile = 40, maxTiles = 64, prompt = 'Press play or step to see the filters.', scale = 'shared' } = {}) {
    this.container = container;
    this.tile = tile;
    this.maxTiles = maxTiles;
    this.prompt = prompt;
    this.scale = scale;
    this.held = { key: null, max: 0 }; // the shared scale: the largest |w| seen for this layer in this run
    this.last = null; // the last drawn kernels, redrawn when the scale mode changes
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'filters-canvas';
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    this.caption.textContent = prompt;
    container.replaceChildren(this.canvas, this.caption);
    this.scratch = document.createElement('canvas');
  }

  clear() {
    const ctx = this.canvas.getContext('2d', SOFT);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.caption.textContent = this.prompt;
    this.held = { key: null, max: 0 };
    this.last = null;
  }

  /** 'shared' or 'tile'; redraws the last kernels at once. */
  setScale(mode) {
    if (mode === this.scale) return;
    this.scale = mode;
    if (this.last) this.draw(this.last.filters, this.last.id);
  }

  /**
   * @param {{shape: number[], data: Float32Array}} filters  shape [O, C, K, K]
   * @param {string} [id]  which layer (the shared scale is held per layer)
   */
  draw(filters, id = '') {
    this.last = { filters, id };
    const { shape, data } = filters;
    const [outs, ins, kh, kw] = shape;
    const rgb = ins === 3; // one colour tile per filter
    const grid = !rgb && ins > 1 && ins <= 16; // rows = output filters, columns = input channels
    const perRow = grid ? ins : Math.min(rgb ? outs : outs * ins, 8);
    const tiles = rgb
      ? Math.min(outs, this.maxTiles)
      : grid
        ? Math.max(1, Math.min(outs, Math.floor(this.maxTiles / ins))) * ins
        : Math.min(outs * ins, this.maxTiles);
    const rows = Math.ceil(tiles / perRow);
    const size = this.tile;
    const gap = grid ? 2 : GAP;
    const dpr = window.devicePixelRatio || 1;
    const cssW = perRow * size + (perRow - 1) * gap;
    const cssH = rows * size + (rows - 1) * gap;
    if (this.canvas.width !== Math.round(cssW * dpr) || this.canvas.height !== Math.round(cssH * dpr)) {
      this.canvas.width = Math.round(cssW * dpr);
      this.canvas.height = Math.round(cssH * dpr);
      this.canvas.style.width = `${cssW}px`;
    }
    const ctx = this.canvas.getContext('2d', SOFT);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.imageSmoothingEnabled = false;

    const key = `${id}:${shape.join('x')}`;
    if (this.held.key !== key) this.held = { key, max: 0 };
    const area = kh * kw;
    const tileSize = rgb ? 3 * area : area; // an RGB filter's three channels are contiguous
    const { scales, max } = kernelScales(data, tiles, tileSize, this.scale, this.held.max);
    this.held.max = Math.max(this.held.max, max);

    this.scratch.width = kw;
    this.scratch.height = kh;
    const sctx = this.scratch.getContext('2d', SOFT);
    const image = sctx.createImageData(kw, kh);
    for (let t = 0; t < tiles; t++) {
      const base = t * tileSize; // (o, c) tiles are contiguous in [O, C, K, K]
      const s = scales[t];
      for (let i = 0; i < area; i++) {
        const px = rgb
          ? [0, 1, 2].map((c) => Math.round(128 + 127 * Math.max(-1, Math.min(1, data[base + c * area + i] / s))))
          : diverging(data[base + i] / s);
        image.data[i * 4] = px[0];
        image.data[i * 4 + 1] = px[1];
        image.data[i * 4 + 2] = px[2];
        image.data[i * 4 + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      const x = (t % perRow) * (size + gap);
      const y = Math.floor(t / perRow) * (size + gap);
      ctx.drawImage(this.scratch, x, y, size, size);
      if (!rgb) {
        ctx.strokeStyle = '#cbd5e1';
        ctx.lineWidth = 1;
        ctx.strokeRect(x + 0.5, y + 0.5, size - 1, size - 1);
      }
    }
    const scaleText =
      this.scale === 'shared'
        ? `one scale for all tiles: ±${this.held.max.toPrecision(2)}, the largest |w| so far this run`
        : 'each tile scaled to its own max |w|';
    this.canvas.dataset.scale = this.scale;
    if (rgb) {
      const more = outs > tiles ? ` (first ${tiles} shown)` : '';
      this.caption.textContent = `${outs} filters of 3×${kh}×${kw}${more} as colours (red, green, blue weights; gray = 0) — ${scaleText}`;
      return;
    }
    const shown = grid ? tiles / ins : tiles;
    const total = grid ? outs : outs * ins;
    const more = total > shown ? ` (first ${shown} shown)` : '';
    const layout = grid ? '; a row per filter, a column per input channel' : '';
    this.caption.textContent = `${outs} filters of ${ins}×${kh}×${kw}${more} — blue negative, white 0, orange positive; ${scaleText}${layout}`;
  }
}

/** -1 -> blue, 0 -> white, +1 -> orange. */
export function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  const white = [255, 255, 255];
  const end = t < 0 ? [37, 99, 235] : [234, 88, 12];
  const a = Math.abs(t);
  return white.map((w, i) => Math.round(w + (end[i] - w) * a));
}
