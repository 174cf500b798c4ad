// The page's whole state: ONE typed table. Every field has a type, a default and bounds;
// the same validation applies to form inputs and to the URL hash, so any view is a link
// and a bad link degrades to defaults with a readable message instead of a broken page.

import { decodeArch } from './arch.js';
import { ALL_PRESETS, TASK_NAMES, reconcile, taskOf } from './tasks.js';

/** The chapters of the course (../shared/CHAPTERS.md): their slugs are fixed, used in links. */
export const CHAPTER_SLUGS = Object.freeze([
  'l1-l2',
  'batch-norm',
  'dropout',
  'network-in-network',
  'deconvolution',
  'up-pooling',
  'transfer-learning',
  'localization',
  'detection',
  'segmentation',
]);

/** @typedef {{type: 'enum', values: string[], default: string, label: string}} EnumField */
/** @typedef {{type: 'int' | 'number', min: number, max: number, below?: number, nullable?: string, default: number | null, label: string}} NumberField */
/** @typedef {{type: 'name' | 'names' | 'arch' | 'chapter' | 'twin', default: string, label: string}} TextField */

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
  // Transfer: run A starts from the shipped backbone; 'scratch' is the same model from the
  // seed's fresh weights (the default twin of the transfer task is backbone:scratch;freeze:).
  backbone: { type: 'enum', values: ['pretrained', 'scratch'], default: 'pretrained', label: 'starting weights (transfer)' },
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
  // The chapter shown ('' = the plain dashboard); a chapter opens in its run A's state.
  chapter: { type: 'chapter', default: '', label: 'chapter' },
  // Run B, trained beside run A in lockstep: '' (off) or `field:value` pairs separated by
  // ';' (twin=l1:0, twin=preset:mnist-tiny;lr:0.1), each a TWIN_FIELDS field and a value
  // that field accepts. B is A with those fields replaced: same seed, same batches.
  twin: { type: 'twin', default: '', label: 'twin run B' },
});

/**
 * The fields a twin may change: what a run trains with (the model, the optimizer and its
 * knobs, the regularizers, dropout, the task's loss weights, transfer's labels, frozen
 * layers and starting weights). Not: task (another data set is not a twin), seed (twins
 * share it: same weights, same batches), backend, the decoding thresholds and the views
 * (they change no training), chapter and twin themselves.
 */
export const TWIN_FIELDS = Object.freeze([
  'preset',
  'arch',
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
  'labels',
  'freeze',
  'backbone',
]);

/** Fields whose change needs a fresh model (free + create). */
export const REBUILD_FIELDS = Object.freeze(['task', 'preset', 'arch', 'labels', 'backbone', 'seed', 'backend']);

/** Fields that pick what the page shows and runs beside A (a chapter, a twin). */
export const PAGE_FIELDS = Object.freeze(['chapter', 'twin']);

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
  if (f.type === 'chapter') return `one of ${CHAPTER_SLUGS.join(', ')}, or nothing`;
  if (f.type === 'twin') return `nothing (off) or field:value pairs separated by ";", the fields among ${TWIN_FIELDS.join(', ')}`;
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
  if (f.type === 'chapter') {
    return text === '' || CHAPTER_SLUGS.includes(text) ? { ok: true, value: text } : bad(`"${text}" is not a chapter`);
  }
  if (f.type === 'twin') {
    const twin = parseTwin(text);
    return twin.ok ? { ok: true, value: twin.text } : bad(twin.message);
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

/** A hash value: URL-encoded, except that a twin's ':' and ';' stay readable. */
function encodeValue(name, text) {
  const encoded = encodeURIComponent(text);
  return name === 'twin' ? encoded.replace(/%3A/g, ':').replace(/%3B/g, ';') : encoded;
}

/**
 * Serialises a full, valid state to a hash ("#preset=...&lr=..."): every field, except
 * the text fields left empty (`arch` without edits, `layer` on auto, no chapter, no twin;
 * but a transfer run's empty twin is written, since a transfer link without one opens
 * with the from-scratch twin).
 */
export function toHash(state) {
  const params = Object.keys(FIELDS)
    .filter((name) => state[name] !== '' || (name === 'twin' && state.task === 'transfer'))
    .map((name) => `${name}=${encodeValue(name, formatField(name, state[name], { hash: true }))}`);
  return `#${params.join('&')}`;
}

/**
 * Parses a twin: '' or `field:value` pairs separated by ';'. Returns {ok: true, text, pairs}
 * (text canonical: each value as the hash writes it; pairs: field -> parsed value) or
 * {ok: false, message}.
 */
export function parseTwin(raw) {
  const text = String(raw ?? '').trim();
  if (text === '') return { ok: true, text: '', pairs: {} };
  const pairs = {};
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const colon = part.indexOf(':');
    if (colon < 0) return { ok: false, message: `"${part}" is not a field:value pair` };
    const key = part.slice(0, colon).trim();
    if (!TWIN_FIELDS.includes(key)) {
      return {
        ok: false,
        message: FIELDS[key] ? `${key} cannot differ between twins` : `"${key}" is not a setting`,
      };
    }
    if (key in pairs) return { ok: false, message: `${key} is given twice` };
    const parsed = parseField(key, part.slice(colon + 1));
    if (!parsed.ok) return { ok: false, message: parsed.message };
    pairs[key] = parsed.value;
  }
  return { ok: true, text: twinText(pairs), pairs };
}

/** The twin text of field -> value pairs (in TWIN_FIELDS order). */
export function twinText(pairs) {
  return TWIN_FIELDS.filter((k) => k in pairs)
    .map((k) => `${k}:${formatField(k, pairs[k], { hash: true })}`)
    .join(';');
}

/**
 * Run B's state: A's with the twin's fields replaced (null when the twin is off). A twin
 * that changes the preset but not the layers runs that preset's own layers.
 */
export function twinState(state) {
  const { pairs } = parseTwin(state.twin);
  if (Object.keys(pairs).length === 0) return null;
  const b = { ...state, ...pairs, twin: '', chapter: '' };
  if ('preset' in pairs && !('arch' in pairs)) b.arch = '';
  return b;
}

/** The twin of the transfer task: the same model from scratch, every layer training. */
export const TRANSFER_TWIN = 'freeze:;backbone:scratch';

/** A value of a chapter file (JSON) as the text parseField reads. */
function fromJson(name, value) {
  if (value === null) return FIELDS[name]?.nullable ?? '';
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

/**
 * The state of one run of a chapter ({preset, config}) over `base`: the preset and its
 * task, the preset's own layers, the config's fields. Returns {state, errors}.
 */
export function runState(run, base = defaults()) {
  const errors = [];
  const state = { ...base, arch: '', twin: '' };
  const task = taskOf(run.preset);
  if (!task) errors.push(`run "${run.id}": "${run.preset}" is not a model preset`);
  else Object.assign(state, { task, preset: run.preset });
  for (const [name, value] of Object.entries(run.config ?? {})) {
    if (!(name in FIELDS) || PAGE_FIELDS.includes(name)) {
      errors.push(`run "${run.id}": "${name}" is not a setting of the page`);
      continue;
    }
    const parsed = parseField(name, fromJson(name, value));
    if (parsed.ok) state[name] = parsed.value;
    else errors.push(`run "${run.id}": ${parsed.message}`);
  }
  return { state, errors };
}

/**
 * A chapter's opening state: its run A (chapter.twins[0]) over `base`, the twin set to what
 * run B (chapter.twins[1]) changes. Returns {state, errors}.
 */
export function chapterState(chapter, base = defaults()) {
  const errors = [];
  const byId = new Map((chapter.runs ?? []).map((r) => [r.id, r]));
  const [idA, idB] = chapter.twins ?? [];
  const runA = byId.get(idA) ?? chapter.runs?.[0];
  if (!runA) return { state: { ...base, chapter: chapter.slug }, errors: [`chapter ${chapter.slug} has no runs`] };
  const a = runState(runA, base);
  errors.push(...a.errors);
  const state = { ...a.state, chapter: chapter.slug };
  const runB = idB === undefined ? null : byId.get(idB);
  if (idB !== undefined && !runB) errors.push(`chapter ${chapter.slug}: its twin "${idB}" is not one of its runs`);
  if (runB) {
    const b = runState(runB, base);
    errors.push(...b.errors);
    const pairs = {};
    for (const name of Object.keys(FIELDS)) {
      if (PAGE_FIELDS.includes(name) || b.state[name] === a.state[name]) continue;
      if (TWIN_FIELDS.includes(name)) pairs[name] = b.state[name];
      else errors.push(`chapter ${chapter.slug}: its twins differ in ${name}, which twins cannot`);
    }
    state.twin = twinText(pairs);
  }
  return { state, errors };
}

/**
 * Parses a URL hash. Never throws: returns {state, errors}, where state is complete and
 * valid (defaults fill what is missing or invalid) and errors are readable messages.
 * `chapters` (slug -> chapter object, web/chapters/index.json) lets `chapter=<slug>` open
 * the chapter's state first; every other key of the hash then overrides it.
 */
export function fromHash(hash, { chapters = {} } = {}) {
  let state = defaults();
  const errors = [];
  const body = String(hash ?? '').replace(/^#/, '');
  if (body === '') return { state, errors };
  const seen = new Set();
  const given = new Set(); // keys with a valid value
  const entries = [];
  for (const part of body.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    try {
      entries.push([decodeURIComponent(rawKey), decodeURIComponent(rawValue.replace(/\+/g, ' '))]);
    } catch {
      // reported in its place, among the others
      entries.push([null, `"${part.length > 60 ? `${part.slice(0, 60)}…` : part}" is not valid URL encoding; ignored`]);
    }
  }
  // The chapter first (the last valid one), then every key over it.
  const slug = entries.filter(([k, v]) => k === 'chapter' && parseField(k, v).ok).at(-1)?.[1]?.trim();
  if (slug) {
    if (chapters[slug]) {
      const opened = chapterState(chapters[slug], state);
      state = opened.state;
      errors.push(...opened.errors);
    } else {
      errors.push(`chapter (chapter): "${slug}" has no chapter file yet (web/chapters/${slug}.json); showing the dashboard`);
    }
  }
  for (const [key, value] of entries) {
    if (key === null) {
      errors.push(value);
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
  if (state.chapter && !chapters[state.chapter]) state.chapter = '';
  const fromChapter = Boolean(slug && chapters[slug]);
  const pair = reconcile(state.task, state.preset, {
    hasTask: given.has('task') || fromChapter,
    hasPreset: given.has('preset') || fromChapter,
  });
  state.task = pair.task;
  state.preset = pair.preset;
  if (pair.error) errors.push(pair.error);
  // A transfer link without a twin runs the from-scratch twin (toHash writes an empty one).
  if (state.task === 'transfer' && !given.has('twin') && !fromChapter) state.twin = TRANSFER_TWIN;
  const twinError = checkTwinTask(state);
  if (twinError) {
    errors.push(twinError);
    state.twin = '';
  }
  return { state, errors };
}

/** A twin's preset must be one of A's task: the message if not, else null. */
export function checkTwinTask(state) {
  const { pairs } = parseTwin(state.twin);
  if ('preset' in pairs && taskOf(pairs.preset) !== state.task) {
    return `twin run B (twin): its preset "${pairs.preset}" is not a ${state.task} preset (twins share the task and its data); twin off`;
  }
  return null;
}

/** The config JSON the wasm Playground takes (the run settings: not the model or the views). */
export function toConfig(state) {
  const config = { seed: state.seed, backend: state.backend };
  for (const name of LIVE_FIELDS) config[name] = state[name];
  if (config.dropout_scaling === 'spec') config.dropout_scaling = null;
  config.freeze = state.task === 'transfer' ? state.freeze.split(',').filter(Boolean) : [];
  return config;
}
