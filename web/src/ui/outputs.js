// What the task's model outputs for a few validation images, redrawn at every probe:
//   localize / detect  the image with the true boxes (dashed) and the predicted ones (solid,
//                      class colour, with class and score; detections after NMS)
//   segment            the predicted mask over the image, the true mask beside it, and the
//                      foreground probability (1 − p(background)) as gray levels, unsmoothed,
//                      where the checkerboard of transposed convolutions shows
//   transfer           each digit with the predicted class and its confidence
// Input: Playground.outputs(k): {task, input: [C,H,W], class_names, examples: [{image, truth:
// {label, boxes: [{class, bbox: [x0,y0,x1,y1]}], mask?}, pred: {label?, score?, boxes:
// [{class, score, bbox}], mask?, fg?}}]}.

// Small canvases painted with putImageData are cheaper on the CPU: a GPU-backed canvas
// uploads on every put and draw (16 maps of 64×64 took 40 ms in one frame on SwiftShader).
const SOFT = { willReadFrequently: true };

const VIEW = 128; // CSS pixels per drawn image side
const PALETTE = ['#e11d48', '#2563eb', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#9333ea', '#0d9488'];

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** The colour of class `c`; in masks, class 0 is the background. */
export function classColor(c) {
  return PALETTE[c % PALETTE.length];
}

/** Intersection over union of two [x0, y0, x1, y1] boxes. */
export function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** Paints a (C, H, W) image in [0, 1] into ImageData; `overlay(i)` may tint pixel i. */
function paint(ctx, [c, h, w], image, overlay = null) {
  const data = ctx.createImageData(w, h);
  const px = data.data;
  const area = h * w;
  const to = (v) => Math.max(0, Math.min(255, Math.round(v * 255)));
  // written in place, no array per pixel: 8 images (24 for segmentation) of 64×64 per probe
  for (let i = 0; i < area; i++) {
    const tint = overlay?.(i);
    for (let k = 0; k < 3; k++) {
      const v = to(image[c === 3 ? k * area + i : i]);
      px[i * 4 + k] = tint ? Math.round(0.45 * v + 0.55 * tint[k]) : v;
    }
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
}

function makeCanvas(w, h, label) {
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  canvas.style.width = `${VIEW}px`;
  // the height follows from the canvas's aspect ratio (styles.css), so it can shrink on a phone
  canvas.setAttribute('aria-label', label);
  return canvas;
}

export class OutputView {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    this.grid = document.createElement('div');
    this.grid.className = 'output-grid';
    this.legend = document.createElement('p');
    this.legend.className = 'output-legend caption';
    this.legend.dataset.testid = 'output-legend';
    this.caption = document.createElement('p');
    this.caption.className = 'caption';
    this.clear();
    container.replaceChildren(this.legend, this.grid, this.caption);
  }

  clear() {
    this.grid.replaceChildren();
    this.legend.replaceChildren();
    this.caption.textContent = 'The outputs appear once the model has been probed.';
    this.container.dataset.step = '';
    this.shape = null;
  }

  /** @param {object} out Playground.outputs(k) @param {{step: number, nms_iou?: number, score_threshold?: number}} info */
  draw(out, info) {
    for (const part of this.parts(out, info)) part();
  }

  /**
   * The drawing as parts of a few milliseconds each, for the page to spread over animation
   * frames: the figures (when the shape changes), one example per part, then the step and caption (last: `data-step` = N means
   * every image of step N is drawn).
   */
  parts(out, info) {
    const key = `${out.task}:${out.input.join('x')}:${out.examples.length}`;
    const parts = [
      () => {
        if (this.shape !== key) {
          this.shape = key;
          this.build(out);
        }
      },
    ];
    for (let i = 0; i < out.examples.length; i += 1) parts.push(() => this.drawExample(out, out.examples[i], this.tiles[i]));
    parts.push(() => {
      this.container.dataset.step = String(info.step);
      this.container.dataset.task = out.task;
      this.caption.textContent = this.describe(out, info);
    });
    return parts;
  }

  build(out) {
    const [, h, w] = out.input;
    const seg = out.task === 'segment';
    this.tiles = out.examples.map((_, i) => {
      const fig = document.createElement('figure');
      fig.className = 'output';
      fig.dataset.testid = 'output';
      const canvases = seg
        ? [makeCanvas(w, h, `prediction ${i}`), makeCanvas(w, h, `truth ${i}`), makeCanvas(w, h, `foreground ${i}`)]
        : [makeCanvas(w, h, `image ${i}`)];
      canvases.forEach((c, k) => {
        c.dataset.testid = seg ? ['mask-pred', 'mask-truth', 'mask-fg'][k] : 'output-image';
      });
      // boxes are drawn on a crisp overlay canvas at display resolution
      const overlay = seg ? null : makeCanvas(VIEW * devicePixelRatio, VIEW * devicePixelRatio, `boxes ${i}`);
      const stack = document.createElement('div');
      stack.className = 'output-stack';
      stack.append(...canvases);
      if (overlay) {
        overlay.className = 'output-overlay';
        overlay.dataset.testid = 'output-boxes';
        stack.append(overlay);
      }
      const caption = document.createElement('figcaption');
      fig.append(stack, caption);
      this.grid.append(fig);
      return { fig, canvases, overlay, caption };
    });
    this.legend.replaceChildren(
      ...out.class_names.map((name, c) => {
        const span = document.createElement('span');
        span.className = 'swatch';
        const color = seg ? classColor(c + 1) : classColor(c);
        span.style.setProperty('--swatch', color);
        span.textContent = name;
        return span;
      }),
    );
  }

  drawExample(out, ex, tile) {
    const dims = out.input;
    const [, h, w] = dims;
    const names = out.class_names;
    if (out.task === 'segment') {
      const tint = (mask) => (i) => (mask && mask[i] > 0 ? rgb(classColor(mask[i])) : null);
      paint(tile.canvases[0].getContext('2d', SOFT), dims, ex.image, tint(ex.pred.mask));
      paint(tile.canvases[1].getContext('2d', SOFT), dims, ex.image, tint(ex.truth.mask));
      const fg = ex.pred.fg ?? [];
      const gray = [1, h, w];
      paint(tile.canvases[2].getContext('2d', SOFT), gray, fg);
      let right = 0;
      const truth = ex.truth.mask ?? [];
      const pred = ex.pred.mask ?? [];
      for (let i = 0; i < truth.length; i++) if (truth[i] === pred[i]) right++;
      const acc = truth.length ? right / truth.length : 0;
      tile.fig.dataset.pixelAccuracy = acc.toFixed(4);
      tile.caption.textContent = `prediction · truth · foreground p — ${(acc * 100).toFixed(1)}% of pixels right`;
      return;
    }
    paint(tile.canvases[0].getContext('2d', SOFT), dims, ex.image);
    const preds = ex.pred.boxes ?? [];
    const truths = ex.truth.boxes ?? [];
    tile.fig.dataset.predBoxes = String(preds.length);
    tile.fig.dataset.truthBoxes = String(truths.length);
    if (tile.overlay) {
      const ctx = tile.overlay.getContext('2d', SOFT);
      const s = tile.overlay.width / w;
      ctx.clearRect(0, 0, tile.overlay.width, tile.overlay.height);
      ctx.lineWidth = 2 * devicePixelRatio;
      for (const t of truths) {
        const [x0, y0, x1, y1] = t.bbox.map((v) => v * s);
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.strokeStyle = '#fff';
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      }
      ctx.setLineDash([]);
      ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.textBaseline = 'top';
      for (const p of preds) {
        const [x0, y0, x1, y1] = p.bbox.map((v) => v * s);
        ctx.strokeStyle = classColor(p.class);
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        const label = `${names[p.class] ?? p.class} ${p.score.toFixed(2)}`;
        const tw = ctx.measureText(label).width + 4;
        ctx.fillStyle = classColor(p.class);
        const ty = Math.max(0, y0 - 13 * devicePixelRatio);
        ctx.fillRect(x0, ty, tw, 13 * devicePixelRatio);
        ctx.fillStyle = '#fff';
        ctx.fillText(label, x0 + 2, ty + 1);
      }
    }
    if (out.task === 'localize') {
      const t = truths[0];
      const p = preds[0];
      const overlap = t && p ? iou(t.bbox, p.bbox) : 0;
      const ok = ex.pred.label === ex.truth.label;
      tile.fig.classList.toggle('wrong', !ok);
      tile.fig.dataset.iou = overlap.toFixed(4);
      tile.caption.textContent = `${names[ex.pred.label] ?? '–'}${ok ? '' : ` ✗ (is ${names[ex.truth.label]})`} · IoU ${overlap.toFixed(2)}`;
    } else if (out.task === 'detect') {
      tile.caption.textContent = `${preds.length} found · ${truths.length} true`;
    } else {
      const ok = ex.pred.label === ex.truth.label;
      tile.fig.classList.toggle('wrong', !ok);
      tile.fig.dataset.correct = String(ok);
      const conf = `${Math.round((ex.pred.score ?? 0) * 100)}%`;
      tile.caption.textContent = ok
        ? `${names[ex.pred.label]} · ${conf}`
        : `${names[ex.pred.label] ?? '–'} ✗ (is ${names[ex.truth.label]})`;
    }
  }

  describe(out, info) {
    const at = `validation images at step ${info.step}`;
    if (out.task === 'segment') {
      return `Each image: predicted mask over the image · true mask · foreground probability (white = object), ${at}. Transposed-convolution decoders can leave a checkerboard in the last one.`;
    }
    if (out.task === 'detect') {
      return `Dashed white: true boxes. Solid: detections after NMS (IoU ${info.nms_iou}) with score ≥ ${info.score_threshold}, ${at}.`;
    }
    if (out.task === 'localize') return `Dashed white: the true box. Solid: the predicted class and box, ${at}.`;
    return `Predicted class and confidence; wrong ones marked with the true class, ${at}.`;
  }
}
