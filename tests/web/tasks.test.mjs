// The task table (web/src/tasks.js) against the presets on disk, and the URL rules that
// keep a link's task and preset in agreement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ALL_PRESETS,
  DECODERS,
  TASKS,
  decoderOf,
  defaultPreset,
  fmtMetric,
  freezable,
  freezeList,
  freezeText,
  reconcile,
  segmentPreset,
  taskOf,
  taskSpec,
} from '../../web/src/tasks.js';
import { defaults, fromHash, parseField, toHash } from '../../web/src/state.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const preset = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'presets', `${name}.json`), 'utf8'));

test("each task's presets are specs of that task (transfer fine-tunes a classifier)", () => {
  for (const [task, t] of Object.entries(TASKS)) {
    assert.ok(t.presets.length > 0, task);
    for (const name of t.presets) {
      const spec = preset(name);
      assert.equal(spec.name, name);
      assert.equal(spec.task ?? 'classify', task === 'transfer' ? 'classify' : task, name);
    }
  }
  assert.equal(new Set(ALL_PRESETS).size, ALL_PRESETS.length, 'a preset belongs to one task');
});

test('the decoder picker and the U-Net toggle reach every segmentation preset, and back', () => {
  const reached = [];
  for (const decoder of Object.keys(DECODERS)) {
    for (const unet of [false, true]) {
      const name = segmentPreset(decoder, unet);
      assert.deepEqual(decoderOf(name), { decoder, unet });
      reached.push(name);
    }
  }
  // the 64×64 shapes-segment-* family; the chapters' small 32×32 decoders are picked by the model select
  const family = TASKS.segment.presets.filter((p) => p.startsWith('shapes-segment-'));
  assert.deepEqual(reached.sort(), [...family].sort());
  for (const p of TASKS.segment.presets.filter((q) => !family.includes(q))) assert.equal(decoderOf(p), null, p);
  assert.equal(decoderOf('shapes-detect'), null);
  assert.throws(() => segmentPreset('bilinear', false), /unknown decoder "bilinear"/);
  // the skip variants really concatenate encoder features; the plain ones do not
  for (const name of family) {
    const concat = preset(name).layers.filter((l) => l.type === 'concat');
    assert.equal(concat.length, decoderOf(name).unet ? 2 : 0, name);
  }
});

test('a link with only a preset takes its task; a mismatched pair is named and fixed', () => {
  assert.deepEqual(reconcile('classify', 'shapes-detect', { hasTask: false, hasPreset: true }), { task: 'detect', preset: 'shapes-detect' });
  assert.deepEqual(reconcile('segment', 'mnist-small', { hasTask: true, hasPreset: false }), {
    task: 'segment',
    preset: 'shapes-segment-transposed',
  });
  const bad = reconcile('detect', 'mnist-small');
  assert.equal(bad.preset, 'shapes-detect');
  assert.match(bad.error, /model preset \(preset\): "mnist-small" is not a detect preset \(it belongs to classify\); using shapes-detect/);

  assert.deepEqual(fromHash('#preset=shapes-localize'), { state: { ...defaults(), task: 'localize', preset: 'shapes-localize' }, errors: [] });
  const { state, errors } = fromHash('#task=detect&preset=mnist-tiny&lr=0.01');
  assert.equal(state.preset, 'shapes-detect');
  assert.equal(state.lr, 0.01, 'the rest of the link is kept');
  assert.equal(errors.length, 1);
  assert.match(errors[0], /not a detect preset/);
  // an unknown task falls back to the default and the preset keeps its own task
  const odd = fromHash('#task=pose&preset=shapes-segment-resize');
  assert.equal(odd.state.task, 'segment');
  assert.match(odd.errors[0], /task \(task\): "pose" is not allowed/);
  for (const task of Object.keys(TASKS)) {
    const s = { ...defaults(), task, preset: defaultPreset(task) };
    assert.deepEqual(fromHash(toHash(s)), { state: s, errors: [] }, task);
  }
});

test('task knobs are bounded and named when bad', () => {
  assert.match(parseField('nms_iou', '1.5').message, /NMS IoU threshold \(nms_iou\): 1.5 is above the maximum/);
  assert.match(parseField('dice', '-1').message, /Dice weight \(dice\): -1 is below the minimum/);
  assert.match(parseField('labels', '7').message, /labelled examples per class \(labels\): "7" is not allowed/);
  assert.match(parseField('freeze', '0;3').message, /frozen layers \(freeze\): "0;3" is not a list of layer names/);
  assert.deepEqual(parseField('freeze', ''), { ok: true, value: '' });
  assert.deepEqual(freezeList('0,3'), ['0', '3']);
  assert.deepEqual(freezeList(''), []);
  assert.equal(freezeText(['3', '0', '3']), '3,0');
});

test('the transfer spec takes the labels per class; other tasks keep their data', () => {
  const spec = preset('digits-transfer');
  const s = { ...defaults(), task: 'transfer', preset: 'digits-transfer', labels: '100' };
  assert.equal(taskSpec(spec, s).data.per_class, 100);
  assert.deepEqual(taskSpec(spec, s).data.digits, [5, 6, 7, 8, 9]);
  assert.equal(spec.data.per_class, 10, 'the preset itself is not changed');
  const detect = preset('shapes-detect');
  assert.equal(taskSpec(detect, { ...s, task: 'detect' }), detect);
});

test('the freeze control lists conv and linear layers but not the new head', () => {
  const layers = [
    { name: '0', kind: 'conv2d', params: 80, out: [8, 28, 28] },
    { name: '1', kind: 'relu', params: 0, out: [8, 28, 28] },
    { name: '2', kind: 'batch_norm', params: 16, out: [8, 28, 28] },
    { name: '3', kind: 'conv2d', params: 1168, out: [16, 14, 14] },
    { name: '7', kind: 'linear', params: 3925, out: [5] },
  ];
  assert.deepEqual(freezable(layers).map((l) => l.name), ['0', '3']);
  assert.equal(taskOf('digits-transfer'), 'transfer');
  assert.equal(taskOf('nope'), undefined);
  assert.equal(fmtMetric('map50', 0.8123), '0.812');
  assert.equal(fmtMetric('pixel_accuracy', 0.5), '50.0%');
  assert.equal(fmtMetric('mean_iou', NaN), '–');
});
