// The readouts' names and warnings (web/src/labels.js), in Node, on hand-picked states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STUCK_AFTER, TINY_THRESHOLD, accuracyLabels, penaltyInfo, stuckAtChance } from '../../web/src/labels.js';
import { TASK_NAMES } from '../../web/src/tasks.js';
import { defaults } from '../../web/src/state.js';

test('every task names what its accuracy readouts measure; detection says object cells', () => {
  for (const task of TASK_NAMES) {
    const a = accuracyLabels(task);
    assert.ok(a.train && a.val && a.title, task);
  }
  assert.match(accuracyLabels('detect').train, /object-cell class/i);
  assert.match(accuracyLabels('detect').title, /grid cells holding a shape's centre/);
  assert.match(accuracyLabels('segment').train, /pixel/i);
  assert.equal(accuracyLabels('classify').train, 'Accuracy');
});

test('penalty mode: the term is added to the loss and its gradient', () => {
  const p = penaltyInfo({ ...defaults(), l1: 0.001, l1_mode: 'penalty' });
  assert.equal(p.label, 'Penalty');
  assert.match(p.title, /added to the loss/);
  assert.match(p.note, /added to the loss and to its gradient/);
  assert.equal(p.warn, false);
  assert.equal(penaltyInfo(defaults()).note, '', 'nothing to say with both off');
});

test('proximal L1: not in the loss; a soft threshold of lr·l1 per step, warned when too small or under Adam', () => {
  // SGD lr 0.05, l1 5e-4: threshold 2.5e-5, large enough, no warning
  const sgd = penaltyInfo({ ...defaults(), optimizer: 'sgd', lr: 0.05, l1: 5e-4, l1_mode: 'proximal' });
  assert.match(sgd.label, /proximal/);
  assert.match(sgd.title, /not in the loss/);
  assert.match(sgd.note, /not in the loss or its gradient.*lr·l1 = 2\.5e-5 towards 0/);
  assert.equal(sgd.warn, false, sgd.note);
  // Adam's default lr 1e-3 with l1 1e-4: threshold 1e-7 < TINY_THRESHOLD
  const adam = penaltyInfo({ ...defaults(), l1: 1e-4, l1_mode: 'proximal' });
  assert.ok(0.001 * 1e-4 < TINY_THRESHOLD);
  assert.equal(adam.warn, true);
  assert.match(adam.note, /lr·l1 = 1\.0e-7/);
  assert.match(adam.note, /too small to zero anything: a weight of 0\.1 needs 1\.0e\+6 steps/);
  assert.match(adam.note, /Adam moves every weight by about lr per step/);
  // SGD with a tiny threshold: warned for the threshold only
  const tiny = penaltyInfo({ ...defaults(), optimizer: 'sgd', lr: 0.01, l1: 1e-5, l1_mode: 'proximal' });
  assert.equal(tiny.warn, true);
  assert.doesNotMatch(tiny.note, /Adam/);
  // proximal with l1 = 0 is no L1 at all
  assert.equal(penaltyInfo({ ...defaults(), l1_mode: 'proximal', l2: 0.01 }).label, 'Penalty');
});

test('a run is stuck near chance when its loss has not fallen or its accuracy is at 1/classes, after enough steps', () => {
  const base = { task: 'classify', step: STUCK_AFTER, first: 2.3, recent: 2.29, accuracy: 0.1, classes: 10, lr: 1e-6 };
  const stuck = stuckAtChance(base);
  assert.match(stuck.why, /after 200 steps the loss has not fallen \(2\.30 → 2\.29\) and training accuracy 10\.0% ≈ chance \(1\/10 = 10\.0%\)/);
  assert.match(stuck.hint, /learning rate \(0\.000001\)/);
  assert.equal(stuckAtChance({ ...base, step: STUCK_AFTER - 1 }), null, 'too early to tell');
  assert.equal(stuckAtChance({ ...base, recent: 0.5, accuracy: 0.85 }), null, 'learning');
  // the loss fell, but the accuracy is still at chance (e.g. only the bias learned the priors)
  assert.match(stuckAtChance({ ...base, recent: 2.0, accuracy: 0.11 }).why, /^after 200 steps training accuracy 11\.0%/);
  // the loss is flat although the accuracy is above chance
  assert.match(stuckAtChance({ ...base, accuracy: 0.5 }).why, /the loss has not fallen/);
  // segmentation's pixel accuracy is not a class accuracy (background dominates): only the loss counts
  assert.equal(stuckAtChance({ ...base, task: 'segment', recent: 1.0, accuracy: 0.1, classes: 6 }), null);
  assert.equal(stuckAtChance({ ...base, first: NaN }), null);
});
