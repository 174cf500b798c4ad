// Validation digits with the model's predicted label; wrong predictions are marked.
// Tiles are made once; an update only repaints 28x28 canvases and captions.

// Small canvases painted with putImageData are cheaper on the CPU: a GPU-backed canvas
// uploads on every put and draw (16 maps of 64×64 took 40 ms in one frame on SwiftShader).
const SOFT = { willReadFrequently: true };

const SIDE = 28;

export class DigitView {
  /** @param {HTMLElement} container */
  constructor(container, count = 12) {
    this.container = container;
    this.tiles = [];
    const grid = document.createElement('div');
    grid.className = 'digit-grid';
    for (let i = 0; i < count; i++) {
      const tile = document.createElement('figure');
      tile.className = 'digit';
      tile.dataset.testid = 'digit';
      const canvas = document.createElement('canvas');
      canvas.width = SIDE;
      canvas.height = SIDE;
      const caption = document.createElement('figcaption');
      caption.textContent = '–';
      tile.append(canvas, caption);
      grid.append(tile);
      this.tiles.push({ tile, canvas, caption, ctx: canvas.getContext('2d', SOFT), image: null });
    }
    this.summary = document.createElement('p');
    this.summary.className = 'caption';
    this.summary.textContent = 'Predictions appear once the model has been probed.';
    container.replaceChildren(grid, this.summary);
  }

  clear() {
    for (const t of this.tiles) {
      t.ctx.clearRect(0, 0, SIDE, SIDE);
      t.caption.textContent = '–';
      t.tile.classList.remove('wrong', 'right');
    }
  }

  /** @param {{pixels: Uint8Array, labels: Uint8Array, preds: Uint8Array, confidence: Float32Array}} d */
  draw(d) {
    let wrong = 0;
    const n = Math.min(this.tiles.length, d.labels.length);
    for (let i = 0; i < this.tiles.length; i++) {
      const t = this.tiles[i];
      t.tile.hidden = i >= n;
      if (i >= n) continue;
      t.image ??= t.ctx.createImageData(SIDE, SIDE);
      const px = d.pixels.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE);
      for (let p = 0; p < px.length; p++) {
        const ink = 255 - px[p]; // dark ink on a light background
        t.image.data[p * 4] = ink;
        t.image.data[p * 4 + 1] = ink;
        t.image.data[p * 4 + 2] = ink;
        t.image.data[p * 4 + 3] = 255;
      }
      t.ctx.putImageData(t.image, 0, 0);
      const ok = d.preds[i] === d.labels[i];
      if (!ok) wrong++;
      t.tile.classList.toggle('wrong', !ok);
      t.tile.classList.toggle('right', ok);
      t.tile.dataset.correct = String(ok);
      const conf = `${Math.round(d.confidence[i] * 100)}%`;
      t.caption.textContent = ok ? `${d.preds[i]} · ${conf}` : `${d.preds[i]} ✗ (is ${d.labels[i]})`;
      t.tile.title = `label ${d.labels[i]}, predicted ${d.preds[i]} with ${conf} confidence`;
    }
    this.summary.textContent = `${n - wrong} of ${n} right — wrong ones in red, with the true label`;
  }
}
