// The settings form: every [data-field] control shows one field of the state table
// (state.js). It is filled from the state, keeps the controls that depend on other fields
// in step (the task's panels, the optimizer's knobs, the log sliders, the segment decoder,
// the transfer task's freeze boxes), and reads what is typed back: a value that does not
// parse is marked and named, one that does becomes a state change.
import { FIELDS, formatField, parseField } from '../state.js';
import { DECODERS, TASKS, decoderOf, freezeList, freezeText, segmentPreset } from '../tasks.js';
import { accuracyLabels, penaltyInfo } from '../labels.js';

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const OPTION_LABELS = {
  ...Object.fromEntries(Object.entries(TASKS).map(([name, t]) => [name, t.label])),
  spec: "each layer's",
  weights: 'all weights',
  conv: 'conv weights',
  linear: 'linear weights',
  all: 'everything',
  first_conv: 'first conv',
  shared: 'one scale for all',
  tile: 'each tile its own',
  train: 'train mode',
  eval: 'eval mode',
};

/**
 * Binds the form's controls to the state.
 * @param {{getState: () => object, setState: (changes: object) => void,
 *          setError: (source: string, message: string | null) => void}} hooks
 * @returns {{fill: () => void, sync: () => void, setFreezable: (layers: object[]) => void}}
 *   fill: every control from the state; sync: only the dependent ones; setFreezable: the
 *   built model's layers that the transfer task can freeze (summary() layers).
 */
export function bindForm({ getState, setState, setError }) {
  let freezeLayers = []; // the model's freezable layers

  function fill() {
    const state = getState();
    for (const el of document.querySelectorAll('[data-field]')) {
      const name = el.dataset.field;
      const field = FIELDS[name];
      if (name === 'preset') {
        // the presets of the current task only
        const values = TASKS[state.task].presets;
        if ([...el.options].map((o) => o.value).join() !== values.join()) {
          el.replaceChildren(...values.map((value) => new Option(value, value)));
        }
      } else if (el.tagName === 'SELECT' && el.options.length === 0) {
        for (const value of field.values) {
          const option = new Option(OPTION_LABELS[value] ?? value, value);
          if (name === 'task') option.title = TASKS[value].description;
          el.add(option);
        }
      }
      el.value = formatField(name, state[name]);
      el.removeAttribute('aria-invalid');
    }
    sync();
  }

  /** Controls that only matter for some settings, and the sliders that mirror their fields. */
  function sync() {
    const state = getState();
    const task = state.task;
    for (const el of document.querySelectorAll('[data-for-task]')) el.hidden = !el.dataset.forTask.split(' ').includes(task);
    $('task-options').hidden = task === 'classify';
    for (const el of document.querySelectorAll('.task-panel')) el.hidden = task === 'classify';
    document.querySelector('.digits-panel').hidden = task !== 'classify';
    document.querySelector('.parts-panel').hidden = TASKS[task].parts.length === 0;
    document.querySelector('.metric-readout').hidden = task === 'classify';
    document.querySelector('.parts-readout').hidden = TASKS[task].parts.length === 0;
    $('val-metric-label').textContent = task === 'transfer' ? 'Val. accuracy from scratch' : TASKS[task].headline.label;
    // what "accuracy" measures in this task, and what the penalty readout is under this L1 mode
    const acc = accuracyLabels(task);
    for (const [id, text] of [['accuracy-label', acc.train], ['val-accuracy-label', acc.val]]) {
      $(id).textContent = text;
      $(id).title = acc.title;
    }
    const chartTitle = $('accuracy-chart').querySelector('.u-title');
    if (chartTitle) chartTitle.textContent = acc.train;
    const pen = penaltyInfo(state);
    $('penalty-label').textContent = pen.label;
    $('penalty-label').title = pen.title;
    $('penalty-note').textContent = pen.note;
    $('penalty-note').hidden = pen.note === '';
    $('penalty-note').classList.toggle('warn', pen.warn);
    const seg = decoderOf(state.preset);
    if (seg) {
      $('decoder').value = seg.decoder;
      $('unet').checked = seg.unet;
    }
    // a field with two selects (kernel_scale): the one not touched follows
    for (const el of document.querySelectorAll('select[data-field="kernel_scale"]')) el.value = state.kernel_scale;
    $('nms-iou-value').textContent = state.nms_iou.toFixed(2);
    $('score-threshold-value').textContent = state.score_threshold.toFixed(2);
    syncFreeze();
    $('momentum').disabled = state.optimizer !== 'sgd';
    $('weight-decay').disabled = state.optimizer !== 'adamw';
    for (const slider of document.querySelectorAll('[data-slider]')) {
      const v = state[slider.dataset.slider];
      const min = Number(slider.min);
      slider.value = String(v > 0 ? Math.max(min + Number(slider.step), Math.min(Number(slider.max), Math.log10(v))) : min);
    }
  }

  function onFieldChange(el) {
    const state = getState();
    const name = el.dataset.field;
    const parsed = parseField(name, el.value);
    if (!parsed.ok) {
      el.setAttribute('aria-invalid', 'true');
      setError(`field:${name}`, `${parsed.message}. Still using ${formatField(name, state[name], { hash: true })}.`);
      return;
    }
    el.removeAttribute('aria-invalid');
    setError(`field:${name}`, null);
    if (parsed.value === state[name]) return;
    setState({ [name]: parsed.value });
  }

  for (const el of document.querySelectorAll('[data-field]')) {
    el.addEventListener('change', () => onFieldChange(el));
    // sliders apply while they move (the detector's boxes are redrawn at once)
    if (el.type === 'range') el.addEventListener('input', () => onFieldChange(el));
  }

  // The segmentation decoder and the U-Net toggle pick one of the segment presets.
  $('decoder').replaceChildren(...Object.entries(DECODERS).map(([value, label]) => new Option(label, value)));
  const pickDecoder = () => setState({ preset: segmentPreset($('decoder').value, $('unet').checked) });
  $('decoder').addEventListener('change', pickDecoder);
  $('unet').addEventListener('change', pickDecoder);

  // Transfer: one checkbox per layer with parameters (but the new head); live.
  function syncFreeze() {
    const box = $('freeze').querySelector('.freeze-boxes');
    const frozen = freezeList(getState().freeze);
    if ([...box.querySelectorAll('input')].map((i) => i.value).join() !== freezeLayers.map((l) => l.name).join()) {
      box.replaceChildren(
        ...freezeLayers.map((l) => {
          const label = document.createElement('label');
          label.className = 'check';
          const input = document.createElement('input');
          input.type = 'checkbox';
          input.value = l.name;
          input.dataset.testid = `freeze-${l.name}`;
          input.addEventListener('change', () => {
            const names = [...box.querySelectorAll('input')].filter((i) => i.checked).map((i) => i.value);
            setError('freeze', null);
            setState({ freeze: freezeText(names) });
          });
          label.append(input, ` ${l.name} · ${l.kind} ${l.out.join('×')}`);
          return label;
        }),
      );
    }
    for (const input of box.querySelectorAll('input')) input.checked = frozen.includes(input.value);
  }
  for (const form of document.querySelectorAll('form.fields')) form.addEventListener('submit', (e) => e.preventDefault());

  // A slider sets its field on a log scale; far left is 0 (off).
  for (const slider of document.querySelectorAll('[data-slider]')) {
    slider.addEventListener('input', () => {
      const pos = Number(slider.value);
      const value = pos <= Number(slider.min) ? 0 : Number((10 ** pos).toPrecision(2));
      const input = document.querySelector(`[data-field="${slider.dataset.slider}"]`);
      input.value = String(value);
      onFieldChange(input);
    });
  }

  function stepExample(delta) {
    const input = $('example');
    const f = FIELDS.example;
    input.value = String(Math.max(f.min, Math.min(f.max, getState().example + delta)));
    onFieldChange(input);
  }
  $('example-prev').addEventListener('click', () => stepExample(-1));
  $('example-next').addEventListener('click', () => stepExample(1));

  return {
    fill,
    sync,
    setFreezable(layers) {
      freezeLayers = layers;
      syncFreeze();
    },
  };
}
