// The first conv layer's kernels as small images: one tile per (output, input channel),
// a diverging colour map (blue < 0 < orange), each filter scaled by its own max |w|.

const TILE = 40; // css pixels per filter tile
const GAP = 6;
const MAX_TILES = 64;

export class FilterView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'filters-canvas';
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    this.caption.textContent = 'Press play or step to see the filters.';
    container.replaceChildren(this.canvas, this.caption);
    this.scratch = document.createElement('canvas');
  }

  clear() {
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** @param {{shape: number[], data: Float32Array}} filters  shape [O, C, K, K] */
  draw({ shape, data }) {
    const [outs, ins, kh, kw] = shape;
    const tiles = Math.min(outs * ins, MAX_TILES);
    const perRow = Math.min(tiles, 8);
    const rows = Math.ceil(tiles / perRow);
    const dpr = window.devicePixelRatio || 1;
    const cssW = perRow * TILE + (perRow - 1) * GAP;
    const cssH = rows * TILE + (rows - 1) * GAP;
    if (this.canvas.width !== Math.round(cssW * dpr) || this.canvas.height !== Math.round(cssH * dpr)) {
      this.canvas.width = Math.round(cssW * dpr);
      this.canvas.height = Math.round(cssH * dpr);
      this.canvas.style.width = `${cssW}px`;
      this.canvas.style.height = `${cssH}px`;
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.imageSmoothingEnabled = false;

    this.scratch.width = kw;
    this.scratch.height = kh;
    const sctx = this.scratch.getContext('2d');
    const image = sctx.createImageData(kw, kh);
    const size = kh * kw;
    for (let t = 0; t < tiles; t++) {
      const base = t * size; // (o, c) tiles are contiguous in [O, C, K, K]
      let maxAbs = 1e-12;
      for (let i = 0; i < size; i++) maxAbs = Math.max(maxAbs, Math.abs(data[base + i]));
      for (let i = 0; i < size; i++) {
        const v = data[base + i] / maxAbs; // -1..1
        const [r, g, b] = diverging(v);
        image.data[i * 4] = r;
        image.data[i * 4 + 1] = g;
        image.data[i * 4 + 2] = b;
        image.data[i * 4 + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      const x = (t % perRow) * (TILE + GAP);
      const y = Math.floor(t / perRow) * (TILE + GAP);
      ctx.drawImage(this.scratch, x, y, TILE, TILE);
      ctx.strokeStyle = '#cbd5e1';
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, TILE - 1, TILE - 1);
    }
    const more = outs * ins > tiles ? ` (first ${tiles} shown)` : '';
    this.caption.textContent = `${outs} filters of ${ins}×${kh}×${kw}${more} — blue negative, orange positive`;
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
