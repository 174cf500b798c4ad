// A conv layer's kernels as small images: one tile per (output, input channel), a
// diverging colour map (blue < 0 < orange), each tile scaled by its own max |w|. With a
// few input channels, each row is one output filter and each column one input channel.
// Filters over an RGB image (3 input channels) are drawn as one colour tile each, the way
// AlexNet's first layer is shown: gray is 0, each filter scaled by its own max |w|.

const GAP = 6;

export class FilterView {
  /**
   * @param {HTMLElement} container
   * @param {{tile?: number, maxTiles?: number, prompt?: string}} options  tile: css pixels per kernel
   */
  constructor(container, { tile = 40, maxTiles = 64, prompt = 'Press play or step to see the filters.' } = {}) {
    this.container = container;
    this.tile = tile;
    this.maxTiles = maxTiles;
    this.prompt = prompt;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'filters-canvas';
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    this.caption.textContent = prompt;
    container.replaceChildren(this.canvas, this.caption);
    this.scratch = document.createElement('canvas');
  }

  clear() {
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.caption.textContent = this.prompt;
  }

  /** @param {{shape: number[], data: Float32Array}} filters  shape [O, C, K, K] */
  draw({ shape, data }) {
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
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.imageSmoothingEnabled = false;

    this.scratch.width = kw;
    this.scratch.height = kh;
    const sctx = this.scratch.getContext('2d');
    const image = sctx.createImageData(kw, kh);
    const area = kh * kw;
    for (let t = 0; t < tiles && rgb; t++) {
      const base = t * 3 * area; // filter t's three channels are contiguous
      let maxAbs = 1e-12;
      for (let i = 0; i < 3 * area; i++) maxAbs = Math.max(maxAbs, Math.abs(data[base + i]));
      for (let i = 0; i < area; i++) {
        for (let c = 0; c < 3; c++) image.data[i * 4 + c] = Math.round(128 + 127 * (data[base + c * area + i] / maxAbs));
        image.data[i * 4 + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      const x = (t % perRow) * (size + gap);
      const y = Math.floor(t / perRow) * (size + gap);
      ctx.drawImage(this.scratch, x, y, size, size);
    }
    for (let t = 0; t < tiles && !rgb; t++) {
      const base = t * area; // (o, c) tiles are contiguous in [O, C, K, K]
      let maxAbs = 1e-12;
      for (let i = 0; i < area; i++) maxAbs = Math.max(maxAbs, Math.abs(data[base + i]));
      for (let i = 0; i < area; i++) {
        const v = data[base + i] / maxAbs; // -1..1
        const [r, g, b] = diverging(v);
        image.data[i * 4] = r;
        image.data[i * 4 + 1] = g;
        image.data[i * 4 + 2] = b;
        image.data[i * 4 + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      const x = (t % perRow) * (size + gap);
      const y = Math.floor(t / perRow) * (size + gap);
      ctx.drawImage(this.scratch, x, y, size, size);
      ctx.strokeStyle = '#cbd5e1';
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, size - 1, size - 1);
    }
    if (rgb) {
      const more = outs > tiles ? ` (first ${tiles} shown)` : '';
      this.caption.textContent = `${outs} filters of 3×${kh}×${kw}${more} as colours (red, green, blue weights; gray = 0, each filter scaled by its max |w|)`;
      return;
    }
    const shown = grid ? tiles / ins : tiles;
    const total = grid ? outs : outs * ins;
    const more = total > shown ? ` (first ${shown} shown)` : '';
    const layout = grid ? '; a row per filter, a column per input channel' : '';
    this.caption.textContent = `${outs} filters of ${ins}×${kh}×${kw}${more} — blue negative, orange positive${layout}`;
  }
}

/** -1 -> blue, 0 -> near white, +1 -> orange. */
function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  const white = [248, 250, 252];
  const end = t < 0 ? [37, 99, 235] : [234, 88, 12];
  const a = Math.abs(t);
  return white.map((w, i) => Math.round(w + (end[i] - w) * a));
}
