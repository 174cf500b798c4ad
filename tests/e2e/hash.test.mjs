// All settings live in the URL hash: a link restores the same run (seed included), and a
// garbage hash gives a readable message and defaults, never a broken page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, number, text, screenshot } from './helpers.mjs';

async function fieldValues(page) {
  return page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll('[data-field]')].map((el) => [el.dataset.field, el.value])),
  );
}

/** Three single steps from a fresh model; returns the loss readout after each. */
async function threeSteps(page) {
  const losses = [];
  for (let i = 1; i <= 3; i++) {
    await page.click('[data-testid="step-once"]');
    await waitForStep(page, i, 30_000);
    losses.push(await text(page, 'loss'));
  }
  return losses;
}

test('a garbage hash shows a readable error, falls back to defaults, and the page still trains', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#lr=banana&batch=-3&%%%`);
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    const message = await error.textContent();
    assert.match(message, /learning rate \(lr\): "banana" is not a number/);
    assert.match(message, /batch size \(batch\): -3 is below the minimum/);
    assert.match(message, /"%%%" is not valid URL encoding/);
    assert.doesNotMatch(message, /page error|worker/, 'only the link problems are reported');

    const values = await fieldValues(page);
    assert.equal(values.lr, '0.001');
    assert.equal(values.batch, '64');
    assert.match(await page.evaluate(() => location.hash), /^#task=classify&preset=mnist-small&lr=0\.001&batch=64&/);

    await waitReady(page);
    await page.click('[data-testid="play"]');
    await waitForStep(page, 10, 60_000);
    await page.click('[data-testid="pause"]');
    assert.ok(Number.isFinite(await number(page, 'loss')), 'loss readout should be a number');
    await screenshot(page, 'hash-garbage');
    assert.deepEqual(page.pageErrors, []);
    assert.doesNotMatch(await error.textContent(), /page error|worker/, 'training added no error');

    // The message can be dismissed; the page stays usable.
    await page.click('.error-dismiss');
    assert.equal(await error.isVisible(), false);
  } finally {
    await env.close();
  }
});

test('a bad value typed into a field is refused with a message, and clears when fixed', { timeout: 120_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    await page.fill('[data-testid="lr"]', '-1');
    await page.press('[data-testid="lr"]', 'Enter');
    await page.locator('[data-testid="lr"]').blur();
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 5_000 });
    assert.match(await error.textContent(), /learning rate \(lr\): -1 is below the minimum/);
    assert.doesNotMatch(await page.evaluate(() => location.hash), /lr=-1/);

    await page.fill('[data-testid="lr"]', '0.01');
    await page.locator('[data-testid="lr"]').blur();
    await error.waitFor({ state: 'hidden', timeout: 5_000 });
    assert.match(await page.evaluate(() => location.hash), /lr=0\.01&/);
  } finally {
    await env.close();
  }
});

test('reloading a link restores the same settings and the same run (seed included)', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    // Change settings through the controls; the hash follows.
    await page.fill('[data-testid="seed"]', '7');
    await page.locator('[data-testid="seed"]').blur();
    await page.fill('[data-testid="lr"]', '0.02');
    await page.locator('[data-testid="lr"]').blur();
    await page.fill('[data-testid="batch"]', '32');
    await page.locator('[data-testid="batch"]').blur();
    await page.selectOption('[data-testid="optimizer"]', 'sgd');
    await page.fill('[data-testid="momentum"]', '0.8');
    await page.locator('[data-testid="momentum"]').blur();
    const hash = await page.evaluate(() => location.hash);
    assert.equal(
      hash,
      '#task=classify&preset=mnist-small&lr=0.02&batch=32&optimizer=sgd&momentum=0.8&weight_decay=0.01&l1=0&l1_target=weights' +
        '&l1_mode=penalty&l2=0&l2_target=weights&dropout_p=spec&dropout_scaling=spec&train_mode=train' +
        '&box_weight=5&dice=0&nms_iou=0.5&score_threshold=0.3&labels=10&freeze=0%2C3&backbone=pretrained&seed=7&backend=cpu&kernel_scale=shared&example=0',
    );
    // Live settings were applied to the running model without complaint.
    await page.waitForTimeout(300);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));

    await waitReady(page);
    const before = await fieldValues(page);
    const lossesBefore = await threeSteps(page);

    await page.reload({ waitUntil: 'commit' });
    await page.waitForSelector('[data-testid="step"]');
    await waitReady(page);
    assert.deepEqual(await fieldValues(page), before, 'the reloaded page shows the same settings');
    assert.equal(await page.evaluate(() => location.hash), hash);
    const lossesAfter = await threeSteps(page);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    assert.deepEqual(lossesAfter, lossesBefore, 'the same link gives the same run');

    // A different seed gives a different run (so the check above can fail).
    await page.fill('[data-testid="seed"]', '8');
    await page.locator('[data-testid="seed"]').blur();
    await page.waitForFunction(() => document.querySelector('[data-testid="step"]').textContent === '0');
    await waitReady(page);
    assert.notDeepEqual(await threeSteps(page), lossesBefore, 'another seed should give another run');
    await screenshot(page, 'hash-restored');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
