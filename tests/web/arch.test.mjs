// The architecture toggles (web/src/arch.js) on the real presets: each maps a spec to a
// spec, its control's state is read back from the result, on-then-off gives the original
// back, and every result is a valid spec (shapes checked by the built wasm core's
// `check_spec`, as the page checks them; run `npm run build` first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  archFor,
  batchNormState,
  decodeArch,
  dropoutState,
  encodeArch,
  headState,
  inceptionFor,
  inceptionState,
  newLayer,
  parseParam,
  sameLayers,
  specFor,
  withBatchNorm,
  withDropout,
  withHead,
  withInception,
} from '../../web/src/arch.js';
import { loadCore } from './core.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const preset = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'presets', `${name}.json`), 'utf8'));
const small = preset('mnist-small');
const tiny = preset('mnist-tiny');
const types = (spec) => spec.layers.map((l) => l.type);
// check_spec judges the shapes; the layer kinds are the Rust side's table, as in the page
const { wasm, kinds: KINDS } = await loadCore();

/**
 * Output shapes of a spec's layers, by the Rust side's check_spec; throws naming every
 * problem (the layer, and why) when the spec does not validate.
 */
function shapes(spec) {
  const result = JSON.parse(wasm.check_spec(JSON.stringify(spec)));
  if (!result.ok) assert.fail(result.errors.map((e) => e.message).join('; '));
  return result.layers.map((l) => l.out);
}

test('the presets pass check_spec (so it can judge the toggles)', () => {
  assert.deepEqual(shapes(small).at(5), [16, 7, 7]);
  shapes(tiny);
  assert.throws(() => shapes({ ...small, layers: small.layers.slice(0, -1) }), /class scores/);
});

test('batch norm on: one after every conv/linear but the classifier, before the activation; off restores', () => {
  assert.equal(batchNormState(small), 'off');
  const on = withBatchNorm(small, true);
  assert.deepEqual(types(on), [
    'conv2d', 'batch_norm', 'relu', 'max_pool',
    'conv2d', 'batch_norm', 'relu', 'max_pool',
    'flatten', 'linear',
  ]);
  assert.equal(batchNormState(on), 'on');
  shapes(on);
  assert.deepEqual(withBatchNorm(on, true), on, 'on twice adds nothing');
  const off = withBatchNorm(on, false);
  assert.deepEqual(off, small);
  assert.equal(batchNormState(off), 'off');
  assert.deepEqual(small.layers.length, 8, 'the input spec is not changed');
});

test('batch norm state: mixed when only some have it, none without a body layer', () => {
  const partial = { ...small, layers: [small.layers[0], { type: 'batch_norm' }, ...small.layers.slice(1)] };
  assert.equal(batchNormState(partial), 'mixed');
  assert.equal(batchNormState(withBatchNorm(partial, true)), 'on');
  const onlyHead = { ...small, layers: [{ type: 'flatten' }, { type: 'linear', out: 10 }] };
  assert.equal(batchNormState(onlyHead), 'none');
});

test('inception on replaces the second conv stage with a block of the same width; off restores the conv', () => {
  assert.equal(inceptionState(small), 'off');
  const on = withInception(small, true);
  assert.deepEqual(types(on), ['conv2d', 'relu', 'max_pool', 'inception', 'max_pool', 'flatten', 'linear']);
  assert.deepEqual(on.layers[3], { type: 'inception', ...inceptionFor(16) });
  assert.equal(inceptionState(on), 'on');
  assert.deepEqual(shapes(on)[3], [16, 14, 14], 'same width and size as the conv stage it replaces');
  assert.deepEqual(withInception(on, false), small);
  assert.equal(inceptionState(tiny), 'none', 'the tiny net has no second conv stage');
  assert.deepEqual(withInception(tiny, true), tiny);
});

test('inception widths add up to the width asked for, in GoogLeNet proportions', () => {
  for (const out of [4, 8, 16, 32, 64, 256]) {
    const w = inceptionFor(out);
    assert.equal(w.b1 + w.b3 + w.b5 + w.pool_proj, out, `out ${out}: ${JSON.stringify(w)}`);
    assert.ok(w.b3_reduce < w.b3 || w.b3 === 1, `out ${out}: the 3×3 branch reduces`);
  }
  assert.deepEqual(inceptionFor(256), { b1: 64, b3_reduce: 96, b3: 128, b5_reduce: 16, b5: 32, pool_proj: 32 });
});

test('inception with batch norm: the stage goes (conv, bn, relu), and comes back with its bn', () => {
  const bn = withBatchNorm(small, true);
  const on = withInception(bn, true);
  assert.deepEqual(types(on), ['conv2d', 'batch_norm', 'relu', 'max_pool', 'inception', 'max_pool', 'flatten', 'linear']);
  assert.equal(batchNormState(on), 'on', 'the remaining conv keeps its batch norm');
  shapes(on);
  assert.deepEqual(withInception(on, false), bn);
});

test('head: flatten + linear <-> 1×1 conv with a map per class + global average pool', () => {
  assert.equal(headState(small), 'linear');
  const nin = withHead(small, 'nin');
  assert.deepEqual(types(nin).slice(-3), ['max_pool', 'conv2d', 'global_avg_pool']);
  assert.deepEqual(nin.layers.at(-2), { type: 'conv2d', out: 10, kernel: 1 });
  assert.ok(!types(nin).includes('flatten') && !types(nin).includes('linear'));
  assert.equal(headState(nin), 'nin');
  assert.deepEqual(shapes(nin).at(-2), [10, 7, 7]);
  assert.deepEqual(withHead(nin, 'linear'), small);
  assert.deepEqual(withHead(small, 'linear'), small);
  assert.equal(headState(tiny), 'linear');
  shapes(withHead(tiny, 'nin'));
});

test('dropout before the head: on and off, under either head', () => {
  assert.equal(dropoutState(small), 'off');
  const on = withDropout(small, true);
  assert.deepEqual(types(on).slice(-3), ['flatten', 'dropout', 'linear']);
  assert.equal(dropoutState(on), 'on');
  shapes(on);
  assert.deepEqual(withDropout(on, false), small);

  // the head switch keeps the dropout, and switching back gives the same spec
  const nin = withHead(on, 'nin');
  assert.deepEqual(types(nin).slice(-4), ['max_pool', 'dropout', 'conv2d', 'global_avg_pool']);
  assert.equal(dropoutState(nin), 'on');
  shapes(nin);
  assert.deepEqual(withHead(nin, 'linear'), on);
  assert.deepEqual(withDropout(nin, false), withHead(small, 'nin'));
});

test('all toggles together, in any order, give the same spec and undo to the preset', () => {
  const steps = [
    (s, on) => withBatchNorm(s, on),
    (s, on) => withInception(s, on),
    (s, on) => withHead(s, on ? 'nin' : 'linear'),
    (s, on) => withDropout(s, on),
  ];
  const orders = [
    [0, 1, 2, 3],
    [3, 2, 1, 0],
    [1, 3, 0, 2],
  ];
  const results = orders.map((order) => {
    let s = small;
    for (const i of order) s = steps[i](s, true);
    shapes(s);
    assert.equal(batchNormState(s), 'on');
    assert.equal(inceptionState(s), 'on');
    assert.equal(headState(s), 'nin');
    assert.equal(dropoutState(s), 'on');
    let back = s;
    for (const i of [...order].reverse()) back = steps[i](back, false);
    assert.deepEqual(back, small, `order ${order}`);
    return s;
  });
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
});

test('named DAG layers keep their connections through inserts and removals', () => {
  // a residual: conv "a", conv "b" reading "a", add of both
  const dag = {
    ...small,
    layers: [
      { type: 'conv2d', name: 'a', out: 4, kernel: 3, padding: 'same' },
      { type: 'relu' },
      { type: 'conv2d', out: 4, kernel: 3, padding: 'same' },
      { type: 'add', name: 'sum', inputs: ['2', 'a'] },
      { type: 'flatten' },
      { type: 'linear', out: 10 },
    ],
  };
  const on = withBatchNorm(dag, true);
  assert.deepEqual(on.layers, [
    { type: 'conv2d', name: 'a', out: 4, kernel: 3, padding: 'same' },
    { type: 'batch_norm' },
    { type: 'relu' },
    { type: 'conv2d', out: 4, kernel: 3, padding: 'same' },
    { type: 'batch_norm' },
    { type: 'add', name: 'sum', inputs: ['4', '1'] }, // the index moved; "a" is now read through its batch norm
    { type: 'flatten' },
    { type: 'linear', out: 10 },
  ]);
  shapes(on);
  shapes(withBatchNorm(dag, false));
  assert.deepEqual(withBatchNorm(on, false).layers[3], { type: 'add', name: 'sum', inputs: ['2', 'a'] });
});

test('arch: base64url round trip, and archFor is empty for the preset itself', () => {
  const layers = withBatchNorm(small, true).layers;
  const text = encodeArch(layers);
  assert.match(text, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeArch(text), { ok: true, layers });
  assert.equal(archFor(small, small), '');
  assert.equal(archFor(small, { ...small, layers: [...small.layers] }), '');
  assert.equal(archFor(small, { ...small, layers }), text);
  assert.deepEqual(specFor(small, text).layers, layers);
  assert.deepEqual(specFor(small, ''), small);
  // key order does not matter
  assert.ok(sameLayers([{ type: 'conv2d', out: 8, kernel: 5 }], [{ kernel: 5, type: 'conv2d', out: 8 }]));
  assert.ok(!sameLayers([{ type: 'conv2d', out: 8, kernel: 5 }], [{ type: 'conv2d', out: 8, kernel: 3 }]));
  // names outside ASCII survive (they are the Rust side's to refuse)
  const odd = [{ type: 'relu', name: 'über' }];
  assert.deepEqual(decodeArch(encodeArch(odd)).layers, odd);
});

test('arch: garbage is refused with a reason', () => {
  const b64 = (s) => Buffer.from(s).toString('base64url');
  const cases = [
    ['%%%', /not base64url/],
    ['abcde', /not base64url/],
    [b64('{not json'), /does not decode to JSON/],
    [b64('{"type":"relu"}'), /not a non-empty list/],
    [b64('[]'), /not a non-empty list/],
    [b64('[3]'), /layer 0 is not an object/],
    [b64('[{"type":"relu"},{"type":"wobble"}]'), /layer 1 has the unknown type "wobble"/],
    [b64('[{"out":3}]'), /layer 0 has the unknown type undefined/],
  ];
  for (const [text, why] of cases) {
    const r = decodeArch(text);
    assert.equal(r.ok, false, text);
    assert.match(r.message, why, text);
  }
});

test('editor helpers: new layers and typed parameters', () => {
  for (const kind of Object.keys(KINDS)) assert.equal(newLayer(kind).type, kind);
  assert.deepEqual(newLayer('conv2d'), { type: 'conv2d', out: 8, kernel: 3, padding: 'same' });
  assert.deepEqual(newLayer('relu'), { type: 'relu' });
  const param = (kind, key) => KINDS[kind].params.find((p) => p.key === key);
  assert.deepEqual(parseParam(param('conv2d', 'out'), ' 16 '), { value: 16 });
  assert.deepEqual(parseParam(param('conv2d', 'out'), ''), { value: undefined });
  assert.match(parseParam(param('conv2d', 'out'), '1.5').error, /^out: "1\.5" is not a whole number$/);
  assert.deepEqual(parseParam(param('conv2d', 'padding'), 'same'), { value: 'same' });
  assert.deepEqual(parseParam(param('conv2d', 'padding'), '2'), { value: 2 });
  assert.match(parseParam(param('conv2d', 'padding'), 'full').error, /padding: "full" must be/);
  assert.deepEqual(parseParam(param('dropout', 'p'), '0.25'), { value: 0.25 });
  assert.match(parseParam(param('dropout', 'p'), 'half').error, /not a number/);
  assert.match(parseParam(param('dropout', 'scaling'), 'weird').error, /not one of inverted, classic/);
  assert.deepEqual(parseParam(param('max_unpool', 'pool'), 'pool1'), { value: 'pool1' });
});

// Every combination of toggles on every preset is a spec that check_spec accepts.
test('every toggle combination on every preset passes check_spec', () => {
  const presets = fs.readdirSync(path.join(ROOT, 'presets')).filter((f) => f.endsWith('.json'));
  let checked = 0;
  for (const file of presets) {
    const base = preset(file.replace(/\.json$/, ''));
    for (let mask = 0; mask < 16; mask++) {
      let s = base;
      if (mask & 1) s = withBatchNorm(s, true);
      if (mask & 2) s = withInception(s, true);
      if (mask & 4) s = withHead(s, 'nin');
      if (mask & 8) s = withDropout(s, true);
      const result = JSON.parse(wasm.check_spec(JSON.stringify(s)));
      assert.deepEqual(result.errors, [], `${file}, toggles ${mask.toString(2)}: ${JSON.stringify(s.layers)}`);
      checked++;
    }
  }
  assert.equal(checked, 16 * presets.length);
  // and the check does fail: a conv after flatten is refused, naming the layer
  const bad = { ...small, layers: [{ type: 'flatten' }, { type: 'conv2d', out: 4, kernel: 3 }, { type: 'linear', out: 10 }] };
  assert.match(JSON.parse(wasm.check_spec(JSON.stringify(bad))).errors[0].message, /^layer 1 \(conv2d\)/);
});
