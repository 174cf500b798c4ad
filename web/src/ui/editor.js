// The layer editor: the model's layers as a list of rows (kind, parameters as small
// inputs, optional name and inputs), with add, remove and move. Every edit is checked by
// the Rust side (`check_spec`, through `check`); each row shows its output shape and
// parameter count or its own error, and "apply" is enabled only for a valid draft that
// differs from the running model. Typing only updates readouts; rows are rebuilt only when
// the list itself changes, so focus stays where the reader types. The kinds and their
// parameters are the Rust side's table (arch.js's KINDS, set before the editor is made).
import { KINDS, newLayer, parseParam, sameLayers } from '../arch.js';

const CHECK_DELAY_MS = 120;

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
};

const fmtCount = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));
export const fmtShape = (shape) => shape.join('×');

/** "11.3k params · 0.91 MFLOPs" for a check_spec or summary() result. */
export function fmtTotals({ params, flops, activations }) {
  const mflops = flops / 1e6;
  return `${fmtCount(params)} params · ${mflops < 10 ? mflops.toFixed(2) : mflops.toFixed(0)} MFLOPs · ${fmtCount(activations)} activations per example`;
}

export class LayerEditor {
  /**
   * @param {HTMLElement} root  holds the list, the add bar, totals, errors and buttons
   * @param {{check: (layers: object[]) => Promise<object>, onApply: (layers: object[]) => void}} hooks
   */
  constructor(root, { check, onApply }) {
    this.check = check;
    this.onApply = onApply;
    this.current = []; // the running model's layers
    this.draft = [];
    this.fieldErrors = new Map(); // "row:key" -> message, for values that are not of their parameter's type
    this.nextAt = null; // where the add bar points after the next rebuild of the rows
    this.version = 0; // bumps on every edit; a check result for an older version is dropped
    this.result = null; // the check_spec result for this.version
    this.timer = 0;
    this.busy = false;

    this.list = el('ol', { className: 'layer-list' });
    this.addKind = el('select', { testid: 'layer-add-kind', title: 'Kind of layer to add' });
    for (const [kind, { about }] of Object.entries(KINDS ?? {})) this.addKind.add(new Option(`${kind} — ${about}`, kind));
    this.addAt = el('select', { testid: 'layer-add-at', title: 'Where the new layer goes' });
    this.addButton = el('button', { type: 'button', testid: 'layer-add', textContent: '+ Add' });
    this.showMeta = el('input', { type: 'checkbox', testid: 'layer-show-meta' });
    this.totals = el('p', { className: 'editor-totals', testid: 'editor-totals' });
    this.wholeError = el('ul', { className: 'editor-error', testid: 'editor-error', hidden: true });
    this.status = el('span', { className: 'editor-status', testid: 'editor-status' });
    this.apply = el('button', { type: 'button', className: 'primary', testid: 'arch-apply', textContent: 'Apply (new model)', disabled: true });
    this.revert = el('button', { type: 'button', testid: 'arch-revert', textContent: 'Discard edits', disabled: true });
    root.replaceChildren(
      this.list,
      el(
        'div',
        { className: 'add-bar' },
        'Add ',
        this.addKind,
        ' ',
        this.addAt,
        ' ',
        this.addButton,
        el('label', { className: 'meta-toggle', title: 'Name layers and choose what they read: branches, skips, concatenations' }, this.showMeta, ' names and inputs'),
      ),
      this.wholeError,
      this.totals,
      el('div', { className: 'editor-actions' }, this.apply, this.revert, this.status),
    );
    this.addButton.addEventListener('click', () => {
      const at = Number(this.addAt.value);
      this.draft.splice(at, 0, newLayer(this.addKind.value));
      this.nextAt = at + 1;
      this.edited({ structure: true });
    });
    this.apply.addEventListener('click', () => {
      if (!this.apply.disabled) this.onApply(structuredClone(this.draft));
    });
    this.revert.addEventListener('click', () => this.setLayers(this.current));
    this.showMeta.addEventListener('change', () => {
      this.renderRows();
      if (this.result) this.renderResult();
    });
  }

  /** The running model's layers: the draft starts over from them. */
  setLayers(layers) {
    this.current = structuredClone(layers);
    this.setDraft(layers);
  }

  /** A draft to edit (e.g. the layers of a link that did not validate). */
  setDraft(layers) {
    this.draft = structuredClone(layers);
    // names and inputs are shown when the layers use them (a DAG), else on request
    this.showMeta.checked = this.draft.some((l) => l.name !== undefined || l.inputs !== undefined);
    this.edited({ structure: true, now: true });
  }

  /** Disables apply while the page is changing the model. */
  setBusy(busy) {
    this.busy = busy;
    this.renderButtons();
  }

  edited({ structure = false, now = false } = {}) {
    this.version += 1;
    this.result = null;
    this.fieldErrors = typeErrors(this.draft);
    if (structure) this.renderRows();
    this.renderButtons();
    clearTimeout(this.timer);
    const version = this.version;
    const run = async () => {
      let result;
      try {
        result = await this.check(structuredClone(this.draft));
      } catch (err) {
        result = { ok: false, layers: [], errors: [{ index: null, message: `could not check the layers: ${err.message}` }] };
      }
      if (version !== this.version) return; // edited meanwhile
      this.result = result;
      this.renderResult();
    };
    if (now || structure) run();
    else this.timer = setTimeout(run, CHECK_DELAY_MS);
  }

  renderRows() {
    const n = this.draft.length;
    this.rows = this.draft.map((layer, i) => this.row(layer, i, n));
    this.list.replaceChildren(...this.rows.map((r) => r.li));
    this.addAt.replaceChildren(new Option('first', '0'));
    this.draft.forEach((layer, i) => this.addAt.add(new Option(`after ${layer.name ?? i} · ${layer.type}`, String(i + 1))));
    // right after the layer just added, else before the classifier
    this.addAt.value = String(this.nextAt !== null && this.nextAt <= n ? this.nextAt : Math.max(0, n - 1));
    this.nextAt = null;
  }

  row(layer, i, n) {
    const kind = KINDS?.[layer.type];
    const li = el('li', { className: 'layer-row', testid: 'layer-row', dataset: { index: String(i), kind: layer.type } });
    const fields = el('span', { className: 'layer-fields' });
    for (const param of kind?.params ?? []) {
      const value = layer[param.key];
      const input = el('input', {
        type: 'text',
        className: `param param-${param.type}`,
        testid: 'layer-param',
        value: value === undefined ? '' : String(value),
        placeholder: param.fallback ?? '',
        autocomplete: 'off',
        spellcheck: false,
        dataset: { param: param.key },
        title: param.type === 'enum' ? `one of ${param.values.join(', ')}` : param.key,
      });
      input.setAttribute('aria-label', `layer ${i} ${param.key}`);
      if (this.fieldErrors.has(`${i}:${param.key}`)) input.setAttribute('aria-invalid', 'true');
      input.addEventListener('input', () => this.setParam(i, param, input));
      fields.append(el('label', {}, el('span', { textContent: param.key }), input));
    }
    const name = el('input', {
      type: 'text',
      className: 'param param-name',
      testid: 'layer-name',
      value: layer.name ?? '',
      placeholder: String(i),
      autocomplete: 'off',
      spellcheck: false,
      title: 'name (optional; other layers read it by this name)',
    });
    name.setAttribute('aria-label', `layer ${i} name`);
    name.addEventListener('input', () => this.setText(i, 'name', name.value.trim() || undefined));
    const inputs = el('input', {
      type: 'text',
      className: 'param param-inputs',
      testid: 'layer-inputs',
      value: (layer.inputs ?? []).join(', '),
      placeholder: i === 0 ? 'input' : String(this.draft[i - 1]?.name ?? i - 1),
      autocomplete: 'off',
      spellcheck: false,
      title: 'inputs: names of earlier layers, comma-separated (default: the layer before)',
    });
    inputs.setAttribute('aria-label', `layer ${i} inputs`);
    inputs.addEventListener('input', () => {
      const list = inputs.value.split(/[\s,]+/).filter(Boolean);
      this.setText(i, 'inputs', list.length ? list : undefined);
    });
    if (this.showMeta.checked) {
      fields.append(
        el('label', { className: 'meta' }, el('span', { textContent: 'name' }), name),
        el('label', { className: 'meta' }, el('span', { textContent: 'inputs' }), inputs),
      );
    }
    const button = (testid, text, title, disabled, action) => {
      const b = el('button', { type: 'button', className: 'icon', testid, textContent: text, title, disabled });
      b.setAttribute('aria-label', `${title} (layer ${i})`);
      b.addEventListener('click', action);
      return b;
    };
    const out = el('span', { className: 'layer-out', testid: 'layer-out', textContent: '…' });
    const error = el('div', { className: 'layer-error', testid: 'layer-error', hidden: true });
    li.append(
      el('span', { className: 'layer-index', textContent: String(i) }),
      el('span', { className: 'layer-kind', textContent: layer.type, title: kind?.about ?? 'unknown kind' }),
      fields,
      out,
      el(
        'span',
        { className: 'layer-actions' },
        button('layer-up', '↑', 'Move up', i === 0, () => this.move(i, -1)),
        button('layer-down', '↓', 'Move down', i === n - 1, () => this.move(i, 1)),
        button('layer-remove', '✕', 'Remove', n === 1, () => {
          this.draft.splice(i, 1);
          this.edited({ structure: true });
        }),
      ),
      error,
    );
    return { li, out, error };
  }

  move(i, delta) {
    const j = i + delta;
    [this.draft[i], this.draft[j]] = [this.draft[j], this.draft[i]];
    this.edited({ structure: true });
  }

  setParam(i, param, input) {
    const parsed = parseParam(param, input.value);
    if (parsed.error) {
      input.setAttribute('aria-invalid', 'true');
      this.draft[i][param.key] = input.value.trim(); // kept as typed: check_spec refuses it too
    } else {
      input.removeAttribute('aria-invalid');
      if (parsed.value === undefined) delete this.draft[i][param.key];
      else this.draft[i][param.key] = parsed.value;
    }
    this.edited();
  }

  setText(i, key, value) {
    if (value === undefined) delete this.draft[i][key];
    else this.draft[i][key] = value;
    this.edited();
  }

  renderResult() {
    const r = this.result;
    const plans = new Map((r.layers ?? []).map((p) => [p.name, p]));
    const rowErrors = this.draft.map(() => []);
    const whole = [];
    for (const e of r.errors ?? []) {
      if (e.index !== null && e.index !== undefined && rowErrors[e.index]) rowErrors[e.index].push(e.message);
      else whole.push(e.message);
    }
    for (const [key, message] of this.fieldErrors) {
      const i = Number(key.split(':')[0]);
      if (rowErrors[i]) rowErrors[i].unshift(`layer ${i} (${this.draft[i].type}): ${message}`);
    }
    this.draft.forEach((layer, i) => {
      const row = this.rows[i];
      const plan = plans.get(layer.name ?? String(i));
      row.out.textContent = plan
        ? `→ ${fmtShape(plan.out)}${plan.params ? ` · ${fmtCount(plan.params)} params` : ''}`
        : rowErrors[i].length
          ? '✗'
          : '—';
      row.out.title = plan ? `in ${plan.in_shapes.map(fmtShape).join(' + ')}, ${plan.flops.toLocaleString()} FLOPs` : '';
      row.error.hidden = rowErrors[i].length === 0;
      row.error.textContent = rowErrors[i].join('; ');
      row.li.classList.toggle('invalid', rowErrors[i].length > 0);
    });
    this.wholeError.replaceChildren(...whole.map((m) => el('li', { textContent: m })));
    this.wholeError.hidden = whole.length === 0;
    this.totals.textContent = r.ok ? `${this.draft.length} layers · ${fmtTotals(r)}` : `${this.draft.length} layers · not valid yet`;
    this.renderButtons();
  }

  renderButtons() {
    const edited = !sameLayers(this.draft, this.current);
    const valid = Boolean(this.result?.ok) && this.fieldErrors.size === 0;
    this.apply.disabled = this.busy || !edited || !valid;
    this.revert.disabled = !edited;
    this.status.textContent = !edited
      ? 'the running model'
      : this.result === null
        ? 'checking…'
        : valid
          ? 'edited — apply builds a new model (fresh weights, step 0)'
          : 'edited — fix the marked layers to apply';
  }
}

/** Values that are not of their parameter's type (typed into the editor, or from a link), by "row:key". */
function typeErrors(layers) {
  const errors = new Map();
  layers.forEach((layer, i) => {
    for (const param of KINDS?.[layer.type]?.params ?? []) {
      if (layer[param.key] === undefined) continue;
      const parsed = parseParam(param, layer[param.key]);
      if (parsed.error) errors.set(`${i}:${param.key}`, parsed.error);
    }
  });
  return errors;
}
