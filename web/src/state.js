// The page's whole state: ONE typed table. Every field has a type, a default and bounds;
// the same validation applies to form inputs and to the URL hash, so any view is a link
// and a bad link degrades to defaults with a readable message instead of a broken page.

import { decodeArch } from './arch.js';
import { ALL_PRESETS, TASK_NAMES, reconcile } from './tasks.js';

/** @typedef {{type: 'enum', values: string[], default: string, label: string}} EnumField */
/** @typedef {{type: 'int' | 'number', min: number, max: number, below?: number, nullable?: string, default: number | null, label: string}} NumberField */
/** @typedef {{type: 'name' | 'names' | 'arch', default: string, label: string}} TextField */

const TARGETS = ['weights', 'conv', 'linear', 'all', 'first_conv'];

export const FIELDS = Object.freeze({
  // The task (tasks.js) and one of its presets; a link's pair that disagrees is reconciled.
  task: { type: 'enum', values: TASK_NAMES, default: 'classify', label: 'task' },
  preset: { type: 'enum', values: ALL_PRESETS, default: 'mnist-small', label: 'model preset' },
  lr: { type: 'number', min: 1e-6, max: 10, default: 0.001, label: 'learning rate' },
  batch: { type: 'int', min: 1, max: 1024, default: 64, label: 'batch size' },
  optimizer: { type: 'enum', values: ['adam', 'sgd', 'adamw'], default: 'adam', label: 'optimizer' },
  momentum: { type: 'number', min: 0, max: 0.999, default: 0.9, label: 'momentum' },
  weight_decay: { type: 'number', min: 0, max: 1, default: 0.01, label: 'AdamW weight decay' },
  l1: { type: 'number', min: 0, max: 1, default: 0, label: 'L1 strength' },
  l1_target: { type: 'enum', values: TARGETS, default: 'weights', label: 'L1 target' },
  l1_mode: { type: 'enum', values: ['penalty', 'proximal'], default: 'penalty', label: 'L1 mode' },
  l2: { type: 'number', min: 0, max: 1, default: 0, label: 'L2 strength' },
  l2_target: { type: 'enum', values: TARGETS, default: 'weights', label: 'L2 target' },
  // null (written "spec") keeps each dropout layer's own p.
  dropout_p: { type: 'number', min: 0, max: 1, below: 1, nullable: 'spec', default: null, label: 'dropout p override' },
  // 'spec' keeps each dropout layer's own scaling.
  dropout_scaling: { type: 'enum', values: ['spec', 'inverted', 'classic'], default: 'spec', label: 'dropout scaling' },
  train_mode: { type: 'enum', values: ['train', 'eval'], default: 'train', label: 'training forward mode' },
  // Task knobs: the box term's weight (localize, detect), the Dice term's (segment), the
  // detector's NMS IoU and score thresholds (redrawn at once), transfer's labelled
  // examples per class and frozen layers (comma list of layer names).
  box_weight: { type: 'number', min: 0, max: 100, default: 5, label: 'box loss weight' },
  dice: { type: 'number', min: 0, max: 10, default: 0, label: 'Dice weight' },
  nms_iou: { type: 'number', min: 0, max: 1, default: 0.5, label: 'NMS IoU threshold' },
  score_threshold: { type: 'number', min: 0, max: 1, default: 0.3, label: 'score threshold' },
  labels: { type: 'enum', values: ['10', '100', '1000'], default: '10', label: 'labelled examples per class' },
  freeze: { type: 'names', default: '0,3', label: 'frozen layers' },
  seed: { type: 'int', min: 0, max: 4294967295, default: 1, label: 'seed' },
  backend: { type: 'enum', values: ['auto', 'webgpu', 'cpu'], default: 'auto', label: 'backend' },
  // How kernel tiles are coloured: 'shared' = one diverging scale for all tiles of a layer
  // (the largest |w| seen in the run, so L2's shrinkage shows as fading), 'tile' = each
  // tile scaled to its own max |w| (patterns show, magnitudes do not). A view setting.
  kernel_scale: { type: 'enum', values: ['shared', 'tile'], default: 'shared', label: 'kernel colour scale' },
  // The per-layer views: which layer ('' = the first conv layer) and which validation example.
  layer: { type: 'name', default: '', label: 'viewed layer' },
  example: { type: 'int', min: 0, max: 996, default: 0, label: 'viewed example' },
  // The edited layer list (base64url JSON) when it differs from the preset's; '' = the preset's.
  arch: { type: 'arch', default: '', label: 'architecture' },
});

/** Fields whose change needs a fresh model (free + create). */
export const REBUILD_FIELDS = Object.freeze(['task', 'preset', 'arch', 'labels', 'seed', 'backend']);

/** Config fields applied to the running model with set_config (only the changed ones are sent). */
export const LIVE_FIELDS = Object.freeze([
  'lr',
  'batch',
  'optimizer',
  'momentum',
  'weight_decay',
  'l1',
  'l1_target',
  'l1_mode',
  'l2',
  'l2_target',
  'dropout_p',
  'dropout_scaling',
  'train_mode',
  'box_weight',
  'dice',
  'nms_iou',
  'score_threshold',
  'freeze',
]);

export function defaults() {
  return Object.fromEntries(Object.entries(FIELDS).map(([name, f]) => [name, f.default]));
}

function describe(name) {
  const f = FIELDS[name];
  if (f.type === 'enum') return `one of ${f.values.join(', ')}`;
  if (f.type === 'name') return 'a layer name (letters, digits and _) or nothing';
  if (f.type === 'names') return 'layer names separated by commas, or nothing';
  if (f.type === 'arch') return 'a layer list as base64url JSON, or nothing for the preset';
  const kind = f.type === 'int' ? 'a whole number' : 'a number';
  const top = f.below !== undefined ? `up to but not including ${f.below}` : `to ${f.max}`;
  return `${kind} from ${f.min} ${top}${f.nullable ? ` or "${f.nullable}"` : ''}`;
}

/**
 * Validates one raw value (a string from an input or the hash, or a number).
 * Returns {ok: true, value} or {ok: false, message} with a message that names the field.
 */
export function parseField(name, raw) {
  const f = FIELDS[name];
  if (!f) return { ok: false, message: `unknown setting "${name}"` };
  const text = raw === null ? '' : String(raw).trim();
  const bad = (why) => ({ ok: false, message: `${f.label} (${name}): ${why}; expected ${describe(name)}` });
  if (f.type === 'name') {
    return /^[A-Za-z0-9_]{0,64}$/.test(text) ? { ok: true, value: text } : bad(`"${text}" is not a layer name`);
  }
  if (f.type === 'names') {
    return /^([A-Za-z0-9_]{1,64}(,[A-Za-z0-9_]{1,64})*)?$/.test(text) ? { ok: true, value: text } : bad(`"${text}" is not a list of layer names`);
  }
  if (f.type === 'arch') {
    if (text === '') return { ok: true, value: '' };
    const decoded = decodeArch(text);
    return decoded.ok ? { ok: true, value: text } : bad(`the value ${decoded.message}`);
  }
  if (f.nullable && (text === '' || text === f.nullable)) return { ok: true, value: null };
  if (text === '') return bad('empty');
  if (f.type === 'enum') {
    return f.values.includes(text) ? { ok: true, value: text } : bad(`"${text}" is not allowed`);
  }
  // Number(...) accepts "1e-3" and rejects "3abc"; it also accepts "0x10" and " ", so be strict.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return bad(`"${text}" is not a number`);
  const value = Number(text);
  if (!Number.isFinite(value)) return bad(`"${text}" is not a finite number`);
  if (f.type === 'int' && !Number.isInteger(value)) return bad(`${text} is not a whole number`);
  if (value < f.min) return bad(`${text} is below the minimum`);
  if (value > f.max || (f.below !== undefined && value >= f.below)) return bad(`${text} is above the maximum`);
  return { ok: true, value };
}

/** A value as text, for inputs (null -> '') and for the hash (null -> its keyword). */
export function formatField(name, value, { hash = false } = {}) {
  if (value === null) return hash ? FIELDS[name].nullable : '';
  return String(value);
}

/**
 * Serialises a full, valid state to a hash ("#preset=...&lr=..."): every field, except
 * the text fields left empty (`arch` without edits, `layer` on auto).
 */
export function toHash(state) {
  const params = Object.keys(FIELDS)
    .filter((name) => state[name] !== '')
    .map((name) => `${name}=${encodeURIComponent(formatField(name, state[name], { hash: true }))}`);
  return `#${params.join('&')}`;
}

/**
 * Parses a URL hash. Never throws: returns {state, errors}, where state is complete and
 * valid (defaults fill what is missing or invalid) and errors are readable messages.
 */
export function fromHash(hash) {
  const state = defaults();
  const errors = [];
  const body = String(hash ?? '').replace(/^#/, '');
  if (body === '') return { state, errors };
  const seen = new Set();
  const given = new Set(); // keys with a valid value
  for (const part of body.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let key;
    let value;
    try {
      key = decodeURIComponent(rawKey);
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    } catch {
      errors.push(`"${part.length > 60 ? `${part.slice(0, 60)}…` : part}" is not valid URL encoding; ignored`);
      continue;
    }
    if (!(key in FIELDS)) {
      errors.push(`unknown setting "${key}"; ignored`);
      continue;
    }
    if (seen.has(key)) {
      errors.push(`${key} is given twice; the last one wins`);
    }
    seen.add(key);
    const parsed = parseField(key, value);
    if (parsed.ok) {
      state[key] = parsed.value;
      given.add(key);
    } else {
      state[key] = FIELDS[key].default;
      given.delete(key);
      const fallback = FIELDS[key].default === '' ? 'nothing' : formatField(key, FIELDS[key].default, { hash: true });
      errors.push(`${parsed.message}; using the default ${key === 'arch' ? "(the preset's layers)" : fallback}`);
    }
  }
  const pair = reconcile(state.task, state.preset, { hasTask: given.has('task'), hasPreset: given.has('preset') });
  state.task = pair.task;
  state.preset = pair.preset;
  if (pair.error) errors.push(pair.error);
  return { state, errors };
}

/** The config JSON the wasm Playground takes (the run settings: not the model or the views). */
export function toConfig(state) {
  const config = { seed: state.seed, backend: state.backend };
  for (const name of LIVE_FIELDS) config[name] = state[name];
  if (config.dropout_scaling === 'spec') config.dropout_scaling = null;
  config.freeze = state.task === 'transfer' ? state.freeze.split(',').filter(Boolean) : [];
  return config;
}
