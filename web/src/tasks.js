// The course's tasks as data: which presets each task lists, which metrics it charts, which
// of its loss terms it draws, and how the segmentation decoder picker and the U-Net toggle
// map onto presets. Pure functions, shared by the page and the unit tests.

/** Every task the page offers, in picker order. `label` is the picker's text (short: it
 * fits the controls column on a phone), `description` the option's tooltip.
 * `transfer` is classification fine-tuned
 * from the shipped digits 0–4 backbone, with a from-scratch twin trained beside it. */
export const TASKS = Object.freeze({
  classify: {
    label: 'Classification (MNIST)',
    description: 'Classification: which of 10 handwritten digits (MNIST)',
    // the last three are the chapters' variants (batch norm, dropout, a naive inception block)
    presets: ['mnist-small', 'mnist-tiny', 'mnist-nin', 'mnist-inception', 'mnist-mlp', 'digits-pretrain', 'mnist-small-bn', 'mnist-dropout', 'mnist-inception-naive'],
    metrics: [],
    headline: { key: 'accuracy', label: 'Val. accuracy' },
    parts: [],
  },
  localize: {
    label: 'Localization (one shape)',
    description: 'Localization: one shape per image, its class and its box',
    presets: ['shapes-localize'],
    metrics: [
      { key: 'mean_iou', label: 'mean IoU', color: '#059669' },
      { key: 'iou50', label: 'IoU ≥ 0.5', color: '#0891b2' },
      { key: 'accuracy', label: 'class accuracy', color: '#ea580c' },
    ],
    headline: { key: 'mean_iou', label: 'Val. mean IoU' },
    parts: ['class', 'box'],
  },
  detect: {
    label: 'Detection (grid + NMS)',
    description: 'Detection: several shapes per image, a grid of cells and non-maximum suppression',
    presets: ['shapes-detect', 'clutter-detect'],
    metrics: [{ key: 'map50', label: 'mAP@0.5', color: '#059669' }],
    headline: { key: 'map50', label: 'Val. mAP@0.5' },
    parts: ['objectness', 'box', 'class'],
  },
  segment: {
    label: 'Segmentation (per pixel)',
    description: 'Segmentation: a class for every pixel (a mask)',
    presets: [
      'shapes-segment-transposed',
      'shapes-segment-unpool',
      'shapes-segment-resize',
      'shapes-segment-transposed-unet',
      'shapes-segment-unpool-unet',
      'shapes-segment-resize-unet',
      // the small 32×32 decoders of the deconvolution and up-pooling chapters
      'segment-small-transposed',
      'segment-small-transposed-k4',
      'segment-small-resize',
      'segment-small-unpool',
    ],
    metrics: [
      { key: 'mean_iou', label: 'mean IoU', color: '#059669' },
      { key: 'pixel_accuracy', label: 'pixel accuracy', color: '#ea580c' },
    ],
    headline: { key: 'mean_iou', label: 'Val. mean IoU' },
    parts: ['pixel_ce', 'dice'],
  },
  transfer: {
    label: 'Transfer learning (5–9)',
    description: 'Transfer learning: digits 5–9 from a backbone trained on 0–4, against the same model from scratch',
    presets: ['digits-transfer'],
    metrics: [
      { key: 'finetune', label: 'fine-tuned', color: '#059669' },
      { key: 'scratch', label: 'from scratch', color: '#94a3b8' },
    ],
    headline: { key: 'accuracy', label: 'Val. accuracy' },
    parts: [],
  },
});

export const TASK_NAMES = Object.freeze(Object.keys(TASKS));
export const ALL_PRESETS = Object.freeze(TASK_NAMES.flatMap((t) => TASKS[t].presets));

/** The segmentation decoders, as the picker names them. */
export const DECODERS = Object.freeze({
  transposed: 'transposed convolution',
  unpool: 'max-unpooling with switches (SegNet)',
  resize: 'upsample + conv (resize-convolution)',
});

/** The task that lists a preset (undefined for an unknown one). */
export function taskOf(preset) {
  return TASK_NAMES.find((t) => TASKS[t].presets.includes(preset));
}

/** The preset a task starts with. */
export function defaultPreset(task) {
  return TASKS[task].presets[0];
}

/** A segmentation preset's decoder and skip connections: {decoder, unet}, or null. */
export function decoderOf(preset) {
  const m = /^shapes-segment-(transposed|unpool|resize)(-unet)?$/.exec(preset);
  return m ? { decoder: m[1], unet: Boolean(m[2]) } : null;
}

/** The segmentation preset with this decoder, with or without U-Net skips. */
export function segmentPreset(decoder, unet) {
  if (!(decoder in DECODERS)) throw new Error(`unknown decoder "${decoder}"`);
  return `shapes-segment-${decoder}${unet ? '-unet' : ''}`;
}

/**
 * Makes task and preset agree. Links may carry only one of them (old links name only the
 * preset), or a pair that does not belong together. Returns {task, preset, error?}.
 */
export function reconcile(task, preset, { hasTask = true, hasPreset = true } = {}) {
  const owner = taskOf(preset);
  if (hasPreset && !hasTask && owner) return { task: owner, preset };
  if (hasTask && !hasPreset) return { task, preset: defaultPreset(task) };
  if (owner === task) return { task, preset };
  return {
    task,
    preset: defaultPreset(task),
    error: `model preset (preset): "${preset}" is not a ${task} preset (it belongs to ${owner ?? 'no task'}); using ${defaultPreset(task)}`,
  };
}

/**
 * The spec that runs for a state: the preset's (with `arch`'s layers already applied),
 * with the transfer task's labelled examples per class from the state.
 */
export function taskSpec(spec, state) {
  if (state.task !== 'transfer' || !spec.data) return spec;
  return { ...spec, data: { ...spec.data, per_class: Number(state.labels) } };
}

/** Layers with parameters that the freeze control lists: every conv / linear but the last
 * layer (the new head always trains). `layers` is a summary's layer list. */
export function freezable(layers) {
  const withParams = layers.filter((l) => l.params > 0 && (l.kind === 'conv2d' || l.kind === 'linear'));
  return withParams.slice(0, -1);
}

/** The freeze field (a comma list of layer names) as a list, and back. */
export function freezeList(text) {
  return text === '' ? [] : text.split(',');
}

export function freezeText(names) {
  return [...new Set(names)].join(',');
}

/** How a metric value reads in the readouts. */
export function fmtMetric(key, value) {
  if (!Number.isFinite(value)) return '–';
  if (key === 'mean_iou' || key === 'map50') return value.toFixed(3);
  return `${(value * 100).toFixed(1)}%`;
}
