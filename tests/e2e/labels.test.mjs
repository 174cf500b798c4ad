// The readouts say what they measure: the accuracy of each task, the penalty under each L1
// mode (and a proximal threshold too small to act), the training steps' forward mode vs
// validation's eval mode, the class names of a scene's shapes, and a run stuck at chance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, playUntil, text, errorText } from './helpers.mjs';

test('detection names its accuracy (object cells) and Inside a layer names the shapes', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#task=detect&backend=cpu&batch=8`);
    await waitReady(page);
    assert.match(await text(page, 'accuracy-label'), /^Object-cell class acc\.$/);
    assert.match(await text(page, 'val-accuracy-label'), /object-cell class/i);
    assert.match(await page.locator('[data-testid="accuracy-label"]').getAttribute('title'), /grid cells holding a shape's centre/);
    await page.click('[data-testid="step-once"]');
    await page.waitForFunction(() => /at step 1,/.test(document.querySelector('[data-testid="view-note"]').textContent), null, { timeout: 30_000 });
    const names = await page.$$eval('[data-testid="output-legend"] .swatch', (spans) => spans.map((s) => s.textContent));
    assert.ok(names.length >= 2, `the legend lists the classes: ${names}`);
    const caption = await page.locator('.example-caption').textContent();
    assert.doesNotMatch(caption, /label \d/);
    assert.ok(names.some((n) => caption.endsWith(`first shape: ${n}`)), `"${caption}" names a class of ${names}`);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await errorText(page));
  } finally {
    await env.close();
  }
});

test('the training steps\' forward is labelled as such; validation says it runs in eval mode', { timeout: 120_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    const label = await page.locator('label:has([data-testid="train-mode"]) span').textContent();
    assert.match(label, /^Training steps run in$/);
    assert.ok(await page.locator('[data-testid="val-mode-note"]').isVisible());
    assert.match((await text(page, 'val-mode-note')).replace(/\s+/g, ' '), /Validation always runs in eval mode.*dropout off, batch norm on its running statistics/);
  } finally {
    await env.close();
  }
});

test('the penalty readout says what it is under each L1 mode; a proximal threshold too small to act is warned', { timeout: 120_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&l1=0.0001&l1_mode=proximal`);
    await waitReady(page);
    assert.equal(await text(page, 'penalty-label'), 'Penalty (L1 proximal)');
    const note = page.locator('[data-testid="penalty-note"]');
    assert.ok(await note.isVisible());
    assert.match(await note.textContent(), /not in the loss or its gradient.*lr·l1 = 1\.0e-7.*too small to zero anything/s);
    assert.match(await note.getAttribute('class'), /\bwarn\b/);
    // penalty mode: in the loss and its gradient, no warning
    await page.selectOption('[data-testid="l1-mode"]', 'penalty');
    await page.waitForFunction(() => document.querySelector('[data-testid="penalty-label"]').textContent === 'Penalty');
    assert.match(await note.textContent(), /added to the loss and to its gradient/);
    assert.doesNotMatch(await note.getAttribute('class'), /\bwarn\b/);
  } finally {
    await env.close();
  }
});

test('a run at chance is called stuck, with a hint; a learning run is not', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    // SGD at lr 1e-6 barely moves the weights: the loss stays at ln 10, accuracy at 10%
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&optimizer=sgd&lr=0.000001&batch=16`);
    await waitReady(page);
    await page.click('[data-testid="play"]');
    await waitForStep(page, 230);
    await page.waitForFunction(() => document.querySelector('[data-testid="phase"]').textContent === 'stuck near chance', null, { timeout: 30_000 });
    assert.ok(await page.locator('[data-testid="phase-hint"]').isVisible());
    assert.match(await text(page, 'phase-hint'), /^Stuck near chance: after \d+ steps the loss has not fallen.*learning rate \(0\.000001\)/s);
    await page.click('[data-testid="pause"]');
    await page.close();

    const learning = await openPage(env.browser, `${env.server.url}#backend=cpu&batch=16`);
    await waitReady(learning);
    await learning.click('[data-testid="play"]');
    await waitForStep(learning, 230);
    assert.equal(await text(learning, 'phase'), 'training');
    assert.equal(await learning.locator('[data-testid="phase-hint"]').isVisible(), false);
    await learning.click('[data-testid="pause"]');
  } finally {
    await env.close();
  }
});
