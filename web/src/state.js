// The page's whole state: ONE typed table. Every field has a type, a default and bounds;
// the same validation applies to form inputs and to the URL hash, so any view is a link
// and a bad link degrades to defaults with a readable message instead of a broken page.

/** @typedef {{type: 'enum', values: string[], default: string, label: string}} EnumField */
/** @typedef {{type: 'int' | 'number', min: number, max: number, default: number, label: string}} NumberField */

export const FIELDS = Object.freeze({
  preset: { type: 'enum', values: ['mnist-small', 'mnist-tiny'], default: 'mnist-small', label: 'model preset' },
  lr: { type: 'number', min: 1e-6, max: 10, default: 0.001, label: 'learning rate' },
  batch: { type: 'int', min: 1, max: 1024, default: 64, label: 'batch size' },
  optimizer: { type: 'enum', values: ['adam', 'sgd'], default: 'adam', label: 'optimizer' },
  momentum: { type: 'number', min: 0, max: 0.999, default: 0.9, label: 'momentum' },
  seed: { type: 'int', min: 0, max: 4294967295, default: 1, label: 'seed' },
  backend: { type: 'enum', values: ['auto', 'webgpu', 'cpu'], default: 'auto', label: 'backend' },
});

/** Fields whose change needs a fresh model (free + create); the others apply live. */
export const REBUILD_FIELDS = Object.freeze(['preset', 'seed', 'backend']);

export function defaults() {
  return Object.fromEntries(Object.entries(FIELDS).map(([name, f]) => [name, f.default]));
}

function describe(name) {
  const f = FIELDS[name];
  if (f.type === 'enum') return `one of ${f.values.join(', ')}`;
  const kind = f.type === 'int' ? 'a whole number' : 'a number';
  return `${kind} from ${f.min} to ${f.max}`;
}

/**
 * Validates one raw value (a string from an input or the hash, or a number).
 * Returns {ok: true, value} or {ok: false, message} with a message that names the field.
 */
export function parseField(name, raw) {
  const f = FIELDS[name];
  if (!f) return { ok: false, message: `unknown setting "${name}"` };
  const text = String(raw).trim();
  const bad = (why) => ({ ok: false, message: `${f.label} (${name}): ${why}; expected ${describe(name)}` });
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
  if (value > f.max) return bad(`${text} is above the maximum`);
  return { ok: true, value };
}

/** Serialises a full, valid state to a hash ("#preset=...&lr=..."), every field included. */
export function toHash(state) {
  const params = Object.keys(FIELDS).map((name) => `${name}=${encodeURIComponent(String(state[name]))}`);
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
      errors.push(`"${part}" is not valid URL encoding; ignored`);
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
    } else {
      state[key] = FIELDS[key].default;
      errors.push(`${parsed.message}; using the default ${FIELDS[key].default}`);
    }
  }
  return { state, errors };
}

/** The config JSON the wasm Playground takes (every field but the preset). */
export function toConfig(state) {
  const { lr, batch, optimizer, momentum, seed, backend } = state;
  return { lr, batch, optimizer, momentum, seed, backend };
}
