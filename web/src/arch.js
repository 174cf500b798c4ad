// The architecture as data. A model is a spec (crate/src/spec.rs): {name, description,
// input, classes, layers}, each layer `{type, ...params, name?, inputs?}`. This module holds
// the layer kinds the Rust side sends (their parameters, for the layer editor), the
// compact form of a layer list in the URL (`arch`), and the course's architecture toggles:
// pure functions spec -> spec, whose checkbox state is read back from the spec itself.
//
// Validation proper (shapes, budgets) is the Rust side's `check_spec`; here a layer list
// is only checked for its form (a list of objects with a known `type`).

/** The model input's reserved name in `inputs` lists. */
export const INPUT = 'input';

/**
 * Every layer kind and its parameters, by `type`: the Rust side's table
 * (crate/src/spec/kinds.rs, the wasm `layer_kinds()`), which the worker posts once it has
 * loaded the module; null until `setKinds`. Each is {kind, about, activation, params}, the
 * params in the order the editor shows them: {key, type, fallback?, initial?, values?},
 * type int | number | padding (pixels, "same" or "valid") | enum | name (of a layer).
 * `fallback` is the Rust default when the key is left out (shown as a placeholder);
 * `initial` is what a newly added layer gets (left out when absent). An exported `let`:
 * the modules that import it see the table once it is set.
 */
export let KINDS = null;

/** The elementwise activations (a conv stage keeps one), from the table. */
let activations = new Set();

/** Sets the layer kinds from the `layer_kinds()` list, once; returns them by type. */
export function setKinds(list) {
  KINDS = Object.freeze(Object.fromEntries(list.map((k) => [k.kind, Object.freeze(k)])));
  activations = new Set(list.filter((k) => k.activation).map((k) => k.kind));
  return KINDS;
}

/** A new layer of `kind` with its initial parameters. */
export function newLayer(kind) {
  const layer = { type: kind };
  for (const p of KINDS[kind].params) if (p.initial !== undefined) layer[p.key] = p.initial;
  return layer;
}

/**
 * Reads one parameter as typed in the editor. Returns {value} (undefined = leave the key
 * out, so the Rust default applies) or {error} naming the problem.
 */
export function parseParam(param, text) {
  const t = String(text).trim();
  if (t === '') return { value: undefined };
  const numeric = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t);
  switch (param.type) {
    case 'int':
      return /^\d+$/.test(t) ? { value: Number(t) } : { error: `${param.key}: "${t}" is not a whole number` };
    case 'number':
      return numeric ? { value: Number(t) } : { error: `${param.key}: "${t}" is not a number` };
    case 'padding':
      if (/^\d+$/.test(t)) return { value: Number(t) };
      return t === 'same' || t === 'valid'
        ? { value: t }
        : { error: `${param.key}: "${t}" must be a number of pixels, "same" or "valid"` };
    case 'enum':
      return param.values.includes(t) ? { value: t } : { error: `${param.key}: "${t}" is not one of ${param.values.join(', ')}` };
    default:
      return { value: t };
  }
}

// ---------------------------------------------------------------------------------------
// The `arch` field of the URL: a layer list as base64url JSON.

function toBase64Url(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error('not base64url');
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const binary = atob(b64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

export function encodeArch(layers) {
  return toBase64Url(JSON.stringify(layers));
}

/**
 * Decodes an `arch` value. Returns {ok: true, layers} or {ok: false, message}; checks the
 * form only (a non-empty list of objects with a known `type`; any `type` while the kinds
 * are not known), not the shapes.
 */
export function decodeArch(text) {
  let json;
  try {
    json = fromBase64Url(String(text));
  } catch {
    return { ok: false, message: 'is not base64url text' };
  }
  let layers;
  try {
    layers = JSON.parse(json);
  } catch {
    return { ok: false, message: 'does not decode to JSON' };
  }
  if (!Array.isArray(layers) || layers.length === 0) return { ok: false, message: 'is not a non-empty list of layers' };
  for (const [i, layer] of layers.entries()) {
    if (layer === null || typeof layer !== 'object' || Array.isArray(layer)) {
      return { ok: false, message: `layer ${i} is not an object` };
    }
    if (KINDS !== null && !Object.hasOwn(KINDS, layer.type)) {
      return { ok: false, message: `layer ${i} has the unknown type ${JSON.stringify(layer.type)}` };
    }
  }
  return { ok: true, layers };
}

/** Same layers? (key order does not matter) */
export function sameLayers(a, b) {
  return canonical(a) === canonical(b);
}

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The `arch` value for a spec: '' when its layers are the preset's. */
export function archFor(preset, spec) {
  return sameLayers(preset.layers, spec.layers) ? '' : encodeArch(spec.layers);
}

/** The spec the page runs: the preset, with the layers of `arch` when set. */
export function specFor(preset, arch) {
  if (!arch) return preset;
  const decoded = decodeArch(arch);
  return decoded.ok ? { ...preset, layers: decoded.layers } : preset;
}

// ---------------------------------------------------------------------------------------
// A layer list as a graph of node objects, so that edits keep every connection: `inputs`
// and max_unpool's `pool` refer to layers by name, and an unnamed layer's name is its
// index, which moves when layers are inserted or removed.

function toGraph(layers) {
  const nodes = layers.map(({ type, name, inputs, ...params }) => ({
    type,
    name: name ?? null,
    params,
    raw: inputs ?? null,
  }));
  const byName = new Map();
  nodes.forEach((n, i) => {
    const key = n.name ?? String(i);
    if (!byName.has(key)) byName.set(key, n);
  });
  const ref = (r) => (r === INPUT ? INPUT : (byName.get(r) ?? r));
  nodes.forEach((n, i) => {
    n.inputs = n.raw === null ? [i === 0 ? INPUT : nodes[i - 1]] : n.raw.map(ref);
    delete n.raw;
    if (n.type === 'max_unpool' && typeof n.params.pool === 'string') n.pool = ref(n.params.pool);
  });
  return nodes;
}

function fromGraph(nodes) {
  const nameOf = (r) => (r === INPUT ? INPUT : typeof r === 'string' ? r : (r.name ?? String(nodes.indexOf(r))));
  return nodes.map((n, i) => {
    const layer = { type: n.type, ...(n.name !== null ? { name: n.name } : {}), ...n.params };
    if (n.pool !== undefined) layer.pool = nameOf(n.pool);
    const chained = n.inputs.length === 1 && n.inputs[0] === (i === 0 ? INPUT : nodes[i - 1]);
    if (!chained) layer.inputs = n.inputs.map(nameOf);
    return layer;
  });
}

const node = (type, params = {}) => ({ type, name: null, params, inputs: [] });

function consumers(nodes, target) {
  return nodes.filter((n) => n.inputs.includes(target));
}

function redirect(nodes, from, to, except = null) {
  for (const n of nodes) {
    if (n === except) continue;
    n.inputs = n.inputs.map((r) => (r === from ? to : r));
  }
}

/** Inserts `added` right after `target`; whatever read `target` reads `added`. */
function insertAfter(nodes, target, added) {
  redirect(nodes, target, added);
  added.inputs = [target];
  nodes.splice(nodes.indexOf(target) + 1, 0, added);
}

/** Inserts `added` right before `target` (one input), between it and its input. */
function insertBefore(nodes, target, added) {
  added.inputs = [target.inputs[0]];
  target.inputs = [added];
  nodes.splice(nodes.indexOf(target), 0, added);
}

/** Removes a one-input node; whatever read it reads its input. */
function remove(nodes, gone) {
  redirect(nodes, gone, gone.inputs[0]);
  nodes.splice(nodes.indexOf(gone), 1);
}

/** The classifier: the last conv2d or linear layer. */
function headOf(nodes) {
  for (let i = nodes.length - 1; i >= 0; i--) if (nodes[i].type === 'linear' || nodes[i].type === 'conv2d') return nodes[i];
  return null;
}

function soleConsumer(nodes, n) {
  const c = consumers(nodes, n);
  return c.length === 1 ? c[0] : null;
}

const oneInput = (n) => n.inputs.length === 1 && (n.inputs[0] === INPUT || typeof n.inputs[0] === 'object');

/** A conv stage: the conv, then (each at most once, read only by the next) batch norm and an activation. */
function stageOf(nodes, conv) {
  const stage = [conv];
  let cur = conv;
  let bn = false;
  let act = false;
  for (;;) {
    const next = soleConsumer(nodes, cur);
    if (!next || next.inputs.length !== 1) return stage;
    if (next.type === 'batch_norm' && !bn && !act) bn = true;
    else if (activations.has(next.type) && !act) act = true;
    else return stage;
    stage.push(next);
    cur = next;
  }
}

function transform(spec, edit) {
  const nodes = toGraph(spec.layers);
  edit(nodes);
  return { ...spec, layers: fromGraph(nodes) };
}

// ---------------------------------------------------------------------------------------
// The toggles. Each `...State(spec)` says what the control shows (and whether it can act);
// each `with...(spec, on)` returns a new spec (the input is not changed).

/** Batch norm: 'on' | 'off' | 'mixed' | 'none' (no conv/linear besides the classifier). */
export function batchNormState(spec) {
  const nodes = toGraph(spec.layers);
  const head = headOf(nodes);
  const bodies = nodes.filter((n) => (n.type === 'conv2d' || n.type === 'linear') && n !== head);
  const count = nodes.filter((n) => n.type === 'batch_norm').length;
  if (bodies.length === 0) return count ? 'mixed' : 'none';
  const all = bodies.every((n) => soleConsumer(nodes, n)?.type === 'batch_norm');
  if (all) return 'on';
  return count ? 'mixed' : 'off';
}

/**
 * On: a batch_norm right after every conv2d and linear layer except the classifier (the
 * last of them), so before the activation. Off: every batch_norm layer removed.
 */
export function withBatchNorm(spec, on) {
  return transform(spec, (nodes) => {
    if (on) {
      const head = headOf(nodes);
      for (const n of [...nodes]) {
        if ((n.type !== 'conv2d' && n.type !== 'linear') || n === head) continue;
        if (soleConsumer(nodes, n)?.type === 'batch_norm') continue;
        insertAfter(nodes, n, node('batch_norm'));
      }
    } else {
      for (const n of nodes.filter((x) => x.type === 'batch_norm' && oneInput(x))) remove(nodes, n);
    }
  });
}

/** Inception widths of about `out` channels in GoogLeNet's proportions (3a: 64 | 96→128 | 16→32 | 32). */
export function inceptionFor(out) {
  const b5 = Math.max(1, Math.round(out / 8));
  const pool_proj = Math.max(1, Math.round(out / 8));
  const b3 = Math.max(1, Math.min(Math.round(out / 2), out - b5 - pool_proj - 1));
  const b1 = Math.max(1, out - b3 - b5 - pool_proj);
  return { b1, b3_reduce: Math.max(1, Math.floor((b3 * 3) / 4)), b3, b5_reduce: Math.max(1, Math.round(b5 / 2)), b5, pool_proj };
}

function secondConv(nodes) {
  const head = headOf(nodes);
  return nodes.filter((n) => n.type === 'conv2d' && n !== head && oneInput(n))[1] ?? null;
}

/** Inception: 'on' | 'off' | 'none' (no second conv stage to replace). */
export function inceptionState(spec) {
  const nodes = toGraph(spec.layers);
  if (nodes.some((n) => n.type === 'inception')) return 'on';
  return secondConv(nodes) ? 'off' : 'none';
}

/**
 * On: the second conv stage (conv, its batch norm and activation) becomes one inception
 * block of about the same width. Off: every inception block becomes a plain 5×5 "same"
 * conv of its width, then batch norm (when batch norm is on) and ReLU.
 */
export function withInception(spec, on) {
  const bn = batchNormState(spec) === 'on';
  return transform(spec, (nodes) => {
    if (on) {
      const conv = secondConv(nodes);
      if (!conv || nodes.some((n) => n.type === 'inception')) return;
      const stage = stageOf(nodes, conv);
      const block = node('inception', inceptionFor(conv.params.out));
      block.inputs = [conv.inputs[0]];
      nodes.splice(nodes.indexOf(conv), 0, block);
      redirect(nodes, stage.at(-1), block);
      for (const n of stage) nodes.splice(nodes.indexOf(n), 1);
    } else {
      for (const block of nodes.filter((n) => n.type === 'inception' && oneInput(n))) {
        const { b1, b3, b5, pool_proj } = block.params;
        const conv = node('conv2d', { out: b1 + b3 + b5 + pool_proj, kernel: 5, padding: 'same' });
        insertAfter(nodes, block, conv);
        let last = conv;
        if (bn) {
          const norm = node('batch_norm');
          insertAfter(nodes, last, norm);
          last = norm;
        }
        insertAfter(nodes, last, node('relu'));
        remove(nodes, block);
      }
    }
  });
}

/**
 * The head: 'linear' (… flatten, [dropout], linear — the classic classifier), 'nin'
 * (… [dropout], 1×1 conv with one map per class, global_avg_pool — network in network),
 * or 'other' (neither; the toggle cannot act).
 */
export function headState(spec) {
  const nodes = toGraph(spec.layers);
  const head = headOf(nodes);
  if (!head) return 'other';
  const last = nodes.at(-1);
  if (head.type === 'linear' && head === last && flattenBefore(head)) return 'linear';
  if (
    head.type === 'conv2d' &&
    head.params.kernel === 1 &&
    head.params.out === spec.classes &&
    last.type === 'global_avg_pool' &&
    nodes.at(-2) === head &&
    last.inputs[0] === head
  ) {
    return 'nin';
  }
  return 'other';
}

/** The flatten that feeds `head` through nothing but dropout layers, or null. */
function flattenBefore(head) {
  let cur = head;
  while (oneInput(cur)) {
    const prev = cur.inputs[0];
    if (prev.type === 'flatten') return oneInput(prev) ? prev : null;
    if (prev.type !== 'dropout') return null;
    cur = prev;
  }
  return null;
}

/** Switches the head between 'linear' and 'nin' (dropout before the head is kept). */
export function withHead(spec, kind) {
  const from = headState(spec);
  if (from === 'other' || from === kind) return spec;
  return transform(spec, (nodes) => {
    const head = headOf(nodes);
    if (kind === 'nin') {
      remove(nodes, flattenBefore(head));
      head.type = 'conv2d';
      head.params = { out: spec.classes, kernel: 1 };
      insertAfter(nodes, head, node('global_avg_pool'));
    } else {
      remove(nodes, nodes.at(-1)); // the global_avg_pool
      let first = head;
      while (oneInput(first) && first.inputs[0].type === 'dropout') first = first.inputs[0];
      insertBefore(nodes, first, node('flatten'));
      head.type = 'linear';
      head.params = { out: spec.classes };
    }
  });
}

/** Dropout right before the head: 'on' | 'off' | 'none' (no head). */
export function dropoutState(spec) {
  const nodes = toGraph(spec.layers);
  const head = headOf(nodes);
  if (!head || !oneInput(head)) return 'none';
  return head.inputs[0].type === 'dropout' ? 'on' : 'off';
}

/** On: a dropout (p 0.5) right before the head. Off: that dropout removed. */
export function withDropout(spec, on) {
  if (dropoutState(spec) === 'none' || (dropoutState(spec) === 'on') === on) return spec;
  return transform(spec, (nodes) => {
    const head = headOf(nodes);
    if (on) insertBefore(nodes, head, node('dropout', { p: 0.5 }));
    else remove(nodes, head.inputs[0]);
  });
}
