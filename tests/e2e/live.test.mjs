// Live settings: regularization, optimizer, dropout overrides and the train/eval switch
// apply to the running model from the next step (set_config), without a new run: the step
// count keeps rising, and the penalty readout shows the regularization term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, number, text, screenshot } from './helpers.mjs';
import { encodeArch } from '../../web/src/arch.js';

/** Waits until the penalty readout is a number above 0. */
async function waitPenalty(page, timeout = 30_000) {
  try {
    await page.waitForFunction(
      () => Number.parseFloat(document.querySelector('[data-testid="penalty"]').textContent) > 0,
      null,
      { timeout, polling: 100 },
    );
  } catch {
    throw new Error(`penalty stayed "${await text(page, 'penalty')}" (error box: "${await text(page, 'error')}")`);
  }
}

test('the L1 slider mid-run: penalty > 0, same run (the step count keeps rising)', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    await page.click('[data-testid="play"]');
    await waitForStep(page, 15);
    assert.equal(await number(page, 'penalty'), 0, 'no regularization, no penalty');

    const before = await number(page, 'step');
    await page.locator('[data-testid="l1-slider"]').fill('-3'); // 10^-3
    assert.equal(await page.inputValue('[data-testid="l1"]'), '0.001');
    assert.match(await page.evaluate(() => location.hash), /&l1=0\.001&/);
    await waitPenalty(page);
    const after = await number(page, 'step');
    assert.ok(after > before, `the run goes on: step ${before} -> ${after}`);
    // 0.001·Σ|w| over ~11k weights of size ~0.05: well above 0, well below the loss
    const penalty = await number(page, 'penalty');
    assert.ok(penalty > 1e-4 && penalty < 2, `penalty ${penalty}`);

    // more live changes: L2 on linear weights only, proximal L1, AdamW, eval-mode forward
    await page.fill('[data-testid="l2"]', '0.01');
    await page.locator('[data-testid="l2"]').blur();
    await page.selectOption('[data-testid="l2-target"]', 'linear');
    await page.selectOption('[data-testid="l1-mode"]', 'proximal');
    await page.selectOption('[data-testid="optimizer"]', 'adamw');
    assert.equal(await page.isDisabled('[data-testid="weight-decay"]'), false, 'weight decay is for AdamW');
    await page.fill('[data-testid="weight-decay"]', '0.05');
    await page.locator('[data-testid="weight-decay"]').blur();
    await page.selectOption('[data-testid="train-mode"]', 'eval');
    const mid = await number(page, 'step');
    await waitForStep(page, mid + 20);
    await page.click('[data-testid="pause"]');
    assert.ok((await number(page, 'step')) > after, 'still the same run');
    assert.ok((await number(page, 'penalty')) > 0);
    assert.match(
      await page.evaluate(() => location.hash),
      /optimizer=adamw&momentum=0\.9&weight_decay=0\.05&l1=0\.001&l1_target=weights&l1_mode=proximal&l2=0\.01&l2_target=linear&.*train_mode=eval/,
    );
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));

    // sliding to the far left turns L1 off
    await page.locator('[data-testid="l1-slider"]').fill('-7');
    assert.equal(await page.inputValue('[data-testid="l1"]'), '0');
    await screenshot(page, 'live-regularization');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('dropout overrides and the train/eval switch apply live to a model with dropout', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const layers = [
      { type: 'conv2d', out: 8, kernel: 5, padding: 'same' },
      { type: 'relu' },
      { type: 'max_pool', size: 2 },
      { type: 'conv2d', out: 16, kernel: 5, padding: 'same' },
      { type: 'relu' },
      { type: 'max_pool', size: 2 },
      { type: 'flatten' },
      { type: 'dropout', p: 0.5 },
      { type: 'linear', out: 10 },
    ];
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&arch=${encodeArch(layers)}`);
    await waitReady(page);
    assert.equal(await page.isChecked('[data-testid="arch-dropout"]'), true);
    await page.click('[data-testid="play"]');
    await waitForStep(page, 10);
    await page.fill('[data-testid="dropout-p"]', '0.9');
    await page.locator('[data-testid="dropout-p"]').blur();
    await page.selectOption('[data-testid="dropout-scaling"]', 'classic');
    const s1 = await number(page, 'step');
    await waitForStep(page, s1 + 10);
    await page.selectOption('[data-testid="train-mode"]', 'eval');
    await page.fill('[data-testid="dropout-p"]', '');
    await page.locator('[data-testid="dropout-p"]').blur();
    const s2 = await number(page, 'step');
    await waitForStep(page, s2 + 10);
    await page.click('[data-testid="pause"]');
    assert.ok((await number(page, 'step')) > s2, 'one run all along');
    const hash = await page.evaluate(() => location.hash);
    assert.match(hash, /dropout_p=spec&dropout_scaling=classic&train_mode=eval/);
    // a bad override is refused by name and the old value kept
    await page.fill('[data-testid="dropout-p"]', '1');
    await page.locator('[data-testid="dropout-p"]').blur();
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 5_000 });
    assert.match(await error.textContent(), /dropout p override \(dropout_p\): 1 is above the maximum/);
    assert.equal(await page.evaluate(() => location.hash), hash);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
