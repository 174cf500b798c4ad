// The page's state table (web/src/state.js), in Node: parsing and serialising the URL
// hash, validation of every field, and that the preset list matches presets/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIELDS, defaults, fromHash, parseField, toConfig, toHash } from '../../web/src/state.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('defaults round-trip through the hash', () => {
  const state = defaults();
  const hash = toHash(state);
  assert.equal(hash, '#preset=mnist-small&lr=0.001&batch=64&optimizer=adam&momentum=0.9&seed=1&backend=auto');
  assert.deepEqual(fromHash(hash), { state, errors: [] });
});

test('every field round-trips a non-default value', () => {
  const state = { preset: 'mnist-tiny', lr: 0.0125, batch: 8, optimizer: 'sgd', momentum: 0.5, seed: 4294967295, backend: 'webgpu' };
  assert.deepEqual(fromHash(toHash(state)), { state, errors: [] });
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
  bad('nope', '1', /unknown setting/);
});

test('toConfig gives the Playground config: every field but the preset', () => {
  const config = toConfig(defaults());
  assert.deepEqual(Object.keys(config).sort(), ['backend', 'batch', 'lr', 'momentum', 'optimizer', 'seed']);
});

test('every field has a default inside its own bounds', () => {
  for (const [name, f] of Object.entries(FIELDS)) {
    assert.deepEqual(parseField(name, String(f.default)), { ok: true, value: f.default }, name);
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
