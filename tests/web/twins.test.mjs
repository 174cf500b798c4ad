// The twin and chapter fields of the state table (web/src/state.js): parsing, round trips
// through the hash, run B's state, a chapter's opening state, and the messages bad input gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIELDS,
  TRANSFER_TWIN,
  TWIN_FIELDS,
  chapterState,
  defaults,
  fromHash,
  parseField,
  parseTwin,
  runState,
  toHash,
  twinState,
} from '../../web/src/state.js';
import { loadCore } from './core.mjs';

await loadCore(); // arch values are checked against the Rust side's layer kinds

const L1L2 = {
  slug: 'l1-l2',
  runs: [
    { id: 'l1', label: 'L1', preset: 'mnist-small', config: { optimizer: 'sgd', lr: 0.05, l1: 0.0005, l1_mode: 'proximal', l1_target: 'conv' } },
    { id: 'l2', label: 'L2', preset: 'mnist-small', config: { optimizer: 'sgd', lr: 0.05, l2: 0.0005, l2_target: 'conv' } },
    { id: 'none', label: 'none', preset: 'mnist-small', config: { optimizer: 'sgd', lr: 0.05 } },
  ],
  twins: ['l1', 'none'],
};

test('twin parses field:value pairs, each checked by its own field, into a canonical text', () => {
  assert.deepEqual(parseField('twin', ''), { ok: true, value: '' });
  assert.deepEqual(parseField('twin', 'l1:0'), { ok: true, value: 'l1:0' });
  // canonical: TWIN_FIELDS order, each value as the hash writes it
  assert.deepEqual(parseField('twin', ' lr:1e-1 ; preset:mnist-tiny;dropout_p:'), { ok: true, value: 'preset:mnist-tiny;lr:0.1;dropout_p:spec' });
  assert.deepEqual(parseTwin('l1:0.5;l1_mode:proximal').pairs, { l1: 0.5, l1_mode: 'proximal' });
  assert.deepEqual(parseField('twin', 'freeze:;backbone:scratch'), { ok: true, value: TRANSFER_TWIN });
});

test('bad twins are refused with a message naming the field and the problem', () => {
  const bad = (raw, why) => {
    const r = parseField('twin', raw);
    assert.equal(r.ok, false, `twin=${raw} should be refused`);
    assert.match(r.message, /^twin run B \(twin\): /);
    assert.match(r.message, why);
  };
  bad('l1', /"l1" is not a field:value pair/);
  bad('seed:2', /seed cannot differ between twins/);
  bad('task:detect', /task cannot differ between twins/);
  bad('colour:blue', /"colour" is not a setting/);
  bad('lr:0', /learning rate \(lr\): 0 is below the minimum/);
  bad('optimizer:rmsprop', /optimizer \(optimizer\): "rmsprop" is not allowed/);
  bad('lr:0.1;lr:0.2', /lr is given twice/);
  bad('arch:@@', /architecture \(arch\)/);
});

test('every twinnable field is a state field, and none of the fields a twin must share', () => {
  for (const name of TWIN_FIELDS) assert.ok(name in FIELDS, name);
  for (const name of ['task', 'seed', 'backend', 'chapter', 'twin', 'layer', 'example', 'nms_iou', 'score_threshold']) {
    assert.ok(!TWIN_FIELDS.includes(name), name);
  }
});

test('run B is A with the twin fields replaced; a twin preset runs its own layers', () => {
  const a = { ...defaults(), lr: 0.01, l1: 0.001, arch: '' };
  assert.equal(twinState(a), null, 'no twin: no B');
  const b = twinState({ ...a, twin: 'l1:0;batch:8' });
  assert.deepEqual(b, { ...a, l1: 0, batch: 8 });
  const withArch = { ...a, arch: 'W3sidHlwZSI6ImZsYXR0ZW4ifSx7InR5cGUiOiJsaW5lYXIiLCJvdXQiOjEwfV0', twin: 'preset:mnist-tiny' };
  assert.equal(parseField('arch', withArch.arch).ok, true);
  const bp = twinState(withArch);
  assert.equal(bp.preset, 'mnist-tiny');
  assert.equal(bp.arch, '', "the twin's preset, not A's edited layers");
  assert.equal(bp.twin, '');
});

test('twins round-trip through the hash, with : and ; readable', () => {
  const state = { ...defaults(), twin: 'preset:mnist-tiny;lr:0.1' };
  const hash = toHash(state);
  assert.match(hash, /&twin=preset:mnist-tiny;lr:0\.1$/);
  assert.deepEqual(fromHash(hash), { state, errors: [] });
  // percent-encoded links read the same
  assert.equal(fromHash('#twin=l1%3A0%3Bl2%3A0.001').state.twin, 'l1:0;l2:0.001');
});

test('a bad twin in a link is named and turned off, the rest kept', () => {
  const { state, errors } = fromHash('#lr=0.01&twin=seed:3');
  assert.equal(state.lr, 0.01);
  assert.equal(state.twin, '');
  assert.equal(errors.length, 1);
  assert.match(errors[0], /^twin run B \(twin\): seed cannot differ between twins; expected nothing \(off\) or field:value pairs/);
  assert.match(errors[0], /using the default nothing$/);
});

test("a twin's preset must belong to A's task", () => {
  const { state, errors } = fromHash('#task=classify&twin=preset:shapes-detect');
  assert.equal(state.twin, '');
  assert.match(errors.join('\n'), /twin run B \(twin\): its preset "shapes-detect" is not a classify preset/);
});

test('a transfer link without a twin gets the from-scratch twin; an explicit empty one stays off', () => {
  assert.equal(fromHash('#task=transfer').state.twin, TRANSFER_TWIN);
  const off = { ...fromHash('#task=transfer').state, twin: '' };
  assert.match(toHash(off), /&twin=$/);
  assert.deepEqual(fromHash(toHash(off)), { state: off, errors: [] });
  const b = twinState(fromHash('#task=transfer').state);
  assert.equal(b.backbone, 'scratch');
  assert.equal(b.freeze, '');
});

test('chapter is empty or a slug of CHAPTERS.md', () => {
  assert.deepEqual(parseField('chapter', ''), { ok: true, value: '' });
  assert.deepEqual(parseField('chapter', 'batch-norm'), { ok: true, value: 'batch-norm' });
  const r = parseField('chapter', 'l1');
  assert.equal(r.ok, false);
  assert.match(r.message, /^chapter \(chapter\): "l1" is not a chapter; expected one of l1-l2, batch-norm, dropout,/);
});

test("a chapter opens in run A's state with the twin set to what run B changes", () => {
  const { state, errors } = chapterState(L1L2);
  assert.deepEqual(errors, []);
  assert.equal(state.chapter, 'l1-l2');
  assert.equal(state.optimizer, 'sgd');
  assert.equal(state.lr, 0.05);
  assert.equal(state.l1, 0.0005);
  assert.equal(state.l1_mode, 'proximal');
  assert.equal(state.l1_target, 'conv');
  // B = none: the three L1 fields back at their defaults, nothing else
  assert.equal(state.twin, 'l1:0;l1_target:weights;l1_mode:penalty');
  const b = twinState(state);
  const none = runState(L1L2.runs[2]).state;
  for (const name of Object.keys(FIELDS)) {
    if (name !== 'chapter') assert.deepEqual(b[name], none[name], name);
  }
});

test('a chapter link opens the chapter, then the other keys override it; it round-trips', () => {
  const chapters = { 'l1-l2': L1L2 };
  const { state, errors } = fromHash('#chapter=l1-l2&lr=0.1&backend=cpu', { chapters });
  assert.deepEqual(errors, []);
  assert.equal(state.lr, 0.1);
  assert.equal(state.backend, 'cpu');
  assert.equal(state.l1_mode, 'proximal');
  assert.equal(state.twin, 'l1:0;l1_target:weights;l1_mode:penalty');
  assert.deepEqual(fromHash(toHash(state), { chapters }), { state, errors: [] });
  // the twin can be overridden (or turned off) by the link
  assert.equal(fromHash('#chapter=l1-l2&twin=', { chapters }).state.twin, '');
});

test('a chapter without a file, or with bad runs, says so and keeps the page usable', () => {
  const missing = fromHash('#chapter=detection&lr=0.01', { chapters: {} });
  assert.equal(missing.state.chapter, '');
  assert.equal(missing.state.lr, 0.01);
  assert.match(missing.errors[0], /^chapter \(chapter\): "detection" has no chapter file yet/);
  const broken = chapterState({
    slug: 'dropout',
    runs: [
      { id: 'a', preset: 'mnist-nothing', config: { lr: -1, colour: 'red' } },
      { id: 'b', preset: 'mnist-small', config: { seed: 5 } },
    ],
    twins: ['a', 'b'],
  });
  assert.deepEqual(broken.errors.map((e) => e.replace(/;.*/, '')), [
    'run "a": "mnist-nothing" is not a model preset',
    'run "a": learning rate (lr): -1 is below the minimum',
    'run "a": "colour" is not a setting of the page',
    'chapter dropout: its twins differ in seed, which twins cannot',
  ]);
});
