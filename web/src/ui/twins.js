// Twin runs in the dashboard: the control that sets run B (the `twin` field of the state
// table: pick a field, give B's value, or switch B off), and the panel that shows what run B
// shows beside A (its readouts, first-layer filters and the task's outputs). The curves of
// A and B are overlaid in the page's charts (main.js).
import { FIELDS, TWIN_FIELDS, formatField, parseField, parseTwin, twinText } from '../state.js';
import { FilterView } from './filters.js';
import { OutputView } from './outputs.js';

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'field') e.dataset.field = v;
    else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
};

/**
 * Makes the twin control in the controls panel (before the export group). It must exist
 * before ui/form.js binds the [data-field] controls: the twin text itself is one of them.
 * hooks: {getState, setState, setError}.
 */
export function makeTwinControl(aside, { getState, setState, setError }) {
  const box = el('div', { class: 'twin-box', 'data-keep': 'true' });
  const title = el('h3', { class: 'group' }, 'Twin run B');
  const textLabel = el('label');
  textLabel.append(
    el('span', {}, 'B = A but'),
    el('input', { field: 'twin', testid: 'twin', type: 'text', autocomplete: 'off', placeholder: 'off (e.g. l1:0;lr:0.1)' }),
  );
  const fieldSelect = el('select', { testid: 'twin-field', 'aria-label': 'the setting B changes' });
  for (const name of TWIN_FIELDS) fieldSelect.add(new Option(`${name} (${FIELDS[name].label})`, name));
  const valueInput = el('input', { testid: 'twin-value', type: 'text', autocomplete: 'off', 'aria-label': "B's value" });
  const set = el('button', { type: 'button', testid: 'twin-set', title: 'Run B with this value (a new pair of runs from the same seed)' }, 'Set B');
  const off = el('button', { type: 'button', testid: 'twin-off', title: 'Train A alone' }, 'Off');
  const row = el('div', { class: 'twin-row' });
  row.append(fieldSelect, valueInput, set, off);
  const note = el(
    'p',
    { class: 'hint', testid: 'twin-note' },
    'Run B trains beside A from the same seed (same initial weights, same batches) with only these settings changed; ' +
      'its curves are drawn dashed over A’s. Turning B on or changing its model starts both runs anew.',
  );
  box.append(title, textLabel, row, note);
  const exportHead = [...aside.querySelectorAll('h3.group')].find((h) => /Export/.test(h.textContent));
  aside.insertBefore(box, exportHead ?? null);

  const prefill = () => {
    const state = getState();
    const name = fieldSelect.value;
    const { pairs } = parseTwin(state.twin);
    valueInput.value = formatField(name, name in pairs ? pairs[name] : state[name], { hash: true });
  };
  fieldSelect.addEventListener('change', prefill);
  set.addEventListener('click', () => {
    const name = fieldSelect.value;
    const parsed = parseField(name, valueInput.value);
    if (!parsed.ok) {
      setError('twin-control', `twin run B: ${parsed.message}`);
      return;
    }
    setError('twin-control', null);
    const { pairs } = parseTwin(getState().twin);
    setState({ twin: twinText({ ...pairs, [name]: parsed.value }) });
  });
  off.addEventListener('click', () => {
    setError('twin-control', null);
    setState({ twin: '' });
  });
  return { prefill };
}

/** The panel with run B's readouts, filters and outputs, beside A's (hidden without B). */
export class TwinPanel {
  constructor(main, after) {
    this.root = el('section', { class: 'panel twin-panel', 'aria-label': 'Run B', testid: 'twin-panel' });
    this.root.hidden = true;
    this.title = el('h2', { testid: 'twin-title' }, 'Run B');
    const dl = el('dl', { class: 'mini' });
    const item = (label, testid) => {
      const d = el('div');
      d.append(el('dt', {}, label), el('dd', { testid }, '–'));
      dl.append(d);
    };
    item('Loss (train)', 'twin-loss');
    item('Accuracy (train)', 'twin-accuracy');
    item('Val. accuracy', 'twin-val-accuracy');
    item('Val. metrics', 'twin-val-metrics');
    this.filtersBox = el('div', { testid: 'twin-filters' });
    this.outputsBox = el('div', { testid: 'twin-outputs' });
    this.root.append(this.title, dl, el('h3', {}, 'First-layer filters'), this.filtersBox, this.outputsBox);
    after.after(this.root);
    this.filters = new FilterView(this.filtersBox, { prompt: "Run B's filters appear once it has been probed." });
    this.outputs = new OutputView(this.outputsBox);
    const nodes = new Map();
    this.$ = (testid) => {
      if (!nodes.has(testid)) nodes.set(testid, this.root.querySelector(`[data-testid="${testid}"]`));
      return nodes.get(testid);
    };
  }

  setRun(on, label, task) {
    this.root.hidden = !on;
    this.outputsBox.hidden = task === 'classify'; // classification shows A's digits only
    this.title.textContent = `Run B: ${label}`;
  }

  clear() {
    for (const id of ['twin-loss', 'twin-accuracy', 'twin-val-accuracy', 'twin-val-metrics']) this.$(id).textContent = '–';
    this.filters.clear();
    this.outputs.clear();
  }

  /** B's train readouts (every train report: only a changed text touches the DOM). */
  train(t) {
    this.set('twin-loss', Number.isFinite(t.loss) ? t.loss.toFixed(4) : String(t.loss));
    this.set('twin-accuracy', Number.isFinite(t.accuracy) ? `${(t.accuracy * 100).toFixed(1)}%` : '–');
  }

  set(testid, text) {
    const node = this.$(testid);
    if (node.textContent !== text) node.textContent = text;
  }

  /** B's readouts and filters (its outputs are drawn in parts by the page's job queue). */
  probe(p) {
    this.$('twin-val-accuracy').textContent = Number.isFinite(p.val_accuracy) ? `${(p.val_accuracy * 100).toFixed(1)}%` : '–';
    this.$('twin-val-metrics').textContent = p.metrics
      ? Object.entries(p.metrics)
          .map(([k, v]) => `${k} ${Number.isFinite(v) ? v.toFixed(3) : '–'}`)
          .join(' · ') || '–'
      : '–';
    if (p.filters) this.filters.draw(p.filters, 'first');
  }
}
