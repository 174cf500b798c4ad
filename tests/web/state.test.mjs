// The page's state table (web/src/state.js), in Node: parsing and serialising the URL
// hash, validation of every field, and that the preset list matches presets/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIELDS, LIVE_FIELDS, PAGE_FIELDS, REBUILD_FIELDS, defaults, fromHash, parseField, toConfig, toHash } from '../../web/src/state.js';
import { encodeArch } from '../../web/src/arch.js';
import { loadCore } from './core.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// an arch's layer types are checked against the Rust side's kinds, as in the page
await loadCore();

test('defaults round-trip through the hash', () => {
  const state = defaults();
  const hash = toHash(state);
  assert.equal(
    hash,
    '#task=classify&preset=mnist-small&lr=0.001&batch=64&optimizer=adam&momentum=0.9&weight_decay=0.01' +
      '&l1=0&l1_target=weights&l1_mode=penalty&l2=0&l2_target=weights&dropout_p=spec&dropout_scaling=spec' +
      '&train_mode=train&box_weight=5&dice=0&nms_iou=0.5&score_threshold=0.3&labels=10&freeze=0%2C3' +
      '&backbone=pretrained&seed=1&backend=auto&kernel_scale=shared&example=0',
  );
  assert.deepEqual(fromHash(hash), { state, errors: [] });
});

test('every field round-trips a non-default value', () => {
  const arch = encodeArch([{ type: 'flatten' }, { type: 'dropout', p: 0.2 }, { type: 'linear', out: 10 }]);
  const state = {
    task: 'segment',
    preset: 'shapes-segment-unpool-unet',
    lr: 0.0125,
    batch: 8,
    optimizer: 'adamw',
    momentum: 0.5,
    weight_decay: 0.05,
    l1: 0.0001,
    l1_target: 'first_conv',
    l1_mode: 'proximal',
    l2: 0.003,
    l2_target: 'all',
    dropout_p: 0.3,
    dropout_scaling: 'classic',
    train_mode: 'eval',
    box_weight: 2.5,
    dice: 1,
    nms_iou: 0.35,
    score_threshold: 0.05,
    labels: '100',
    freeze: '0,3,conv_2',
    backbone: 'scratch',
    seed: 4294967295,
    backend: 'webgpu',
    kernel_scale: 'tile',
    layer: 'conv_1',
    example: 996,
    arch,
    chapter: 'up-pooling',
    twin: 'preset:shapes-segment-resize;lr:0.5;dropout_p:spec',
  };
  assert.deepEqual(Object.keys(state).sort(), Object.keys(FIELDS).sort(), 'this test covers every field');
  // the chapter's own state is overridden by every key of the link
  const chapters = {
    'up-pooling': {
      slug: 'up-pooling',
      runs: [{ id: 'a', preset: 'shapes-segment-unpool', config: { lr: 0.1 } }, { id: 'b', preset: 'shapes-segment-transposed', config: {} }],
      twins: ['a', 'b'],
    },
  };
  assert.deepEqual(fromHash(toHash(state), { chapters }), { state, errors: [] });
  assert.match(toHash(state), /&layer=conv_1&example=996&arch=[A-Za-z0-9_-]+&chapter=up-pooling&twin=preset:shapes-segment-resize;lr:0\.5;dropout_p:spec$/);
});

test('empty text fields stay out of the hash; a missing field takes its default', () => {
  const hash = toHash(defaults());
  assert.doesNotMatch(hash, /arch=|layer=/);
  assert.deepEqual(fromHash('#arch=&layer=').state, defaults());
  assert.deepEqual(fromHash('#dropout_p=').state.dropout_p, null);
});

test('bad new fields are named and fall back without losing the rest', () => {
  const { state, errors } = fromHash(
    '#l1=-1&l2=lots&l1_target=bias&l1_mode=soft&optimizer=adamw&weight_decay=2&dropout_p=1' +
      '&dropout_scaling=half&train_mode=test&layer=conv.1&example=997&arch=%25%25&seed=9',
  );
  assert.equal(state.optimizer, 'adamw');
  assert.equal(state.seed, 9);
  const expected = [
    /^L1 strength \(l1\): -1 is below the minimum; expected a number from 0 to 1; using the default 0$/,
    /^L2 strength \(l2\): "lots" is not a number/,
    /^L1 target \(l1_target\): "bias" is not allowed; expected one of weights, conv, linear, all, first_conv/,
    /^L1 mode \(l1_mode\): "soft" is not allowed; expected one of penalty, proximal/,
    /^AdamW weight decay \(weight_decay\): 2 is above the maximum/,
    /^dropout p override \(dropout_p\): 1 is above the maximum; expected a number from 0 up to but not including 1 or "spec"; using the default spec$/,
    /^dropout scaling \(dropout_scaling\): "half" is not allowed/,
    /^training forward mode \(train_mode\): "test" is not allowed; expected one of train, eval/,
    /^viewed layer \(layer\): "conv.1" is not a layer name/,
    /^viewed example \(example\): 997 is above the maximum/,
    /^architecture \(arch\): the value is not base64url text; expected a layer list as base64url JSON, or nothing for the preset; using the default \(the preset's layers\)$/,
  ];
  assert.equal(errors.length, expected.length, errors.join('\n'));
  expected.forEach((re, i) => assert.match(errors[i], re));
  const fallback = defaults();
  for (const key of ['l1', 'l2', 'l1_target', 'l1_mode', 'weight_decay', 'dropout_p', 'dropout_scaling', 'train_mode', 'layer', 'example', 'arch']) {
    assert.deepEqual(state[key], fallback[key], key);
  }
});

test('an arch that is base64url but not a layer list is named too', () => {
  const b64 = (s) => Buffer.from(s).toString('base64url');
  const { state, errors } = fromHash(`#arch=${b64('[{"type":"conv3d"}]')}`);
  assert.equal(state.arch, '');
  assert.match(errors[0], /^architecture \(arch\): the value layer 0 has the unknown type "conv3d"/);
});

test('an empty or missing hash gives the defaults without errors', () => {
  for (const hash of ['', '#', undefined, null]) assert.deepEqual(fromHash(hash), { state: defaults(), errors: [] });
});

test('a garbage hash falls back per field and names each problem', () => {
  const { state, errors } = fromHash('#lr=banana&batch=-3&%%%');
  assert.deepEqual(state, defaults());
  assert.equal(errors.length, 3);
  assert.match(errors[0], /^learning rate \(lr\): "banana" is not a number; expected a number from 0\.000001 to 10; using the default 0\.001$/);
  assert.match(errors[1], /^batch size \(batch\): -3 is below the minimum; expected a whole number from 1 to 1024; using the default 64$/);
  assert.match(errors[2], /"%%%" is not valid URL encoding/);
});

test('valid fields survive next to invalid ones; unknown and repeated keys are reported', () => {
  const { state, errors } = fromHash('#seed=42&optimizer=rmsprop&colour=blue&seed=43');
  assert.equal(state.seed, 43);
  assert.equal(state.optimizer, 'adam');
  assert.equal(errors.length, 3);
  assert.match(errors.join('\n'), /optimizer \(optimizer\): "rmsprop" is not allowed; expected one of adam, sgd/);
  assert.match(errors.join('\n'), /unknown setting "colour"/);
  assert.match(errors.join('\n'), /seed is given twice/);
});

test('parseField enforces type and bounds', () => {
  const ok = (name, raw, value) => assert.deepEqual(parseField(name, raw), { ok: true, value }, `${name}=${raw}`);
  const bad = (name, raw, why) => {
    const r = parseField(name, raw);
    assert.equal(r.ok, false, `${name}=${raw} should be refused`);
    assert.match(r.message, why);
  };
  ok('lr', '1e-3', 0.001);
  ok('lr', ' 0.5 ', 0.5);
  ok('batch', '1024', 1024);
  ok('momentum', '0', 0);
  ok('backend', 'cpu', 'cpu');
  bad('lr', '', /empty/);
  bad('lr', '0', /below the minimum/);
  bad('lr', '0x10', /not a number/);
  bad('lr', 'Infinity', /not a number/);
  bad('lr', '1e999', /not a finite number/);
  bad('batch', '2.5', /not a whole number/);
  bad('batch', '1025', /above the maximum/);
  bad('momentum', '1', /above the maximum/);
  bad('seed', '-1', /below the minimum/);
  bad('backend', 'WEBGPU', /not allowed/);
  ok('dropout_p', 'spec', null);
  ok('dropout_p', '', null);
  ok('dropout_p', '0.99', 0.99);
  bad('dropout_p', '1', /above the maximum/);
  bad('dropout_p', '-0.1', /below the minimum/);
  ok('optimizer', 'adamw', 'adamw');
  ok('layer', '', '');
  ok('layer', '3', '3');
  bad('layer', 'a b', /not a layer name/);
  ok('arch', '', '');
  bad('arch', 'bm90IGpzb24', /does not decode to JSON/); // "not json"
  bad('nope', '1', /unknown setting/);
});

test('toConfig gives the Playground config: the run settings, "spec" as null', () => {
  const config = toConfig(defaults());
  assert.deepEqual(Object.keys(config).sort(), [
    'backend', 'batch', 'box_weight', 'dice', 'dropout_p', 'dropout_scaling', 'freeze', 'l1', 'l1_mode', 'l1_target',
    'l2', 'l2_target', 'lr', 'momentum', 'nms_iou', 'optimizer', 'score_threshold', 'seed', 'train_mode', 'weight_decay',
  ]);
  // freezing is for the transfer task only
  assert.deepEqual(config.freeze, []);
  assert.deepEqual(toConfig({ ...defaults(), task: 'transfer', preset: 'digits-transfer' }).freeze, ['0', '3']);
  assert.equal(config.dropout_p, null);
  assert.equal(config.dropout_scaling, null);
  assert.equal(toConfig({ ...defaults(), dropout_scaling: 'classic' }).dropout_scaling, 'classic');
  // every field is either a rebuild field, a live config field, or a view field
  const views = ['layer', 'example', 'kernel_scale'];
  assert.deepEqual([...REBUILD_FIELDS, ...LIVE_FIELDS, ...PAGE_FIELDS, ...views].sort(), Object.keys(FIELDS).sort());
});

test('every field has a default inside its own bounds', () => {
  for (const [name, f] of Object.entries(FIELDS)) {
    assert.deepEqual(parseField(name, f.default), { ok: true, value: f.default }, name);
  }
});

test('the preset list is exactly the presets/ directory', () => {
  const files = fs
    .readdirSync(path.join(ROOT, 'presets'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
  assert.deepEqual([...FIELDS.preset.values].sort(), files);
});
