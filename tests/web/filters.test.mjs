// The kernel tiles' colour scale (web/src/ui/filters.js), in Node: one shared scale for all
// tiles (held at the largest |w| seen) against each tile's own, on hand-made kernels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelScales, diverging } from '../../web/src/ui/filters.js';

// three 2×2 tiles: max |w| 0.5, 2, 0.1
const data = Float32Array.from([0.5, -0.25, 0, 0.1, -2, 1, 0, 0, 0.1, 0.05, -0.1, 0]);

test('tile scale: each tile against its own max |w|', () => {
  const { scales, max } = kernelScales(data, 3, 4, 'tile');
  assert.deepEqual(scales.map((s) => +s.toFixed(6)), [0.5, 2, 0.1]);
  assert.equal(max, 2);
});

test('shared scale: every tile against the largest |w|, never below what was held', () => {
  assert.deepEqual(kernelScales(data, 3, 4, 'shared').scales, [2, 2, 2]);
  // weights shrank (L2) since a larger max was seen: the held scale stays, so the tiles fade
  const shrunk = data.map((w) => w / 4);
  const { scales, max } = kernelScales(shrunk, 3, 4, 'shared', 2);
  assert.deepEqual(scales, [2, 2, 2]);
  assert.equal(max, 0.5, 'the max of these tiles, for the caller to hold');
  // only the tiles asked for count
  assert.deepEqual(kernelScales(data, 1, 4, 'shared').scales, [0.5]);
});

test('all-zero kernels do not divide by zero', () => {
  const { scales } = kernelScales(new Float32Array(8), 2, 4, 'shared');
  assert.ok(scales.every((s) => s > 0 && Number.isFinite(s)));
});

test('the diverging map is white at exactly 0, blue at -1, orange at +1, clamped beyond', () => {
  assert.deepEqual(diverging(0), [255, 255, 255]);
  assert.deepEqual(diverging(-1), [37, 99, 235]);
  assert.deepEqual(diverging(1), [234, 88, 12]);
  assert.deepEqual(diverging(3), diverging(1));
  assert.deepEqual(diverging(-0.5), [146, 177, 245]);
});
