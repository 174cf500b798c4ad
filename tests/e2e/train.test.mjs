// The page trains: press play, the step count rises and the loss falls, on the CPU
// backend and on the WebGPU backend (Chromium's SwiftShader). Pause stops it; single
// step advances by exactly one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, sampleLoss, number, text, mean, screenshot } from './helpers.mjs';

/** Plays until `steps`, then checks that the loss fell and the steps rose. */
async function playAndCheck(page, { steps, drop }) {
  await page.click('[data-testid="play"]');
  const samples = await sampleLoss(page, steps, { timeout: 240_000 });
  assert.ok(samples.length >= 3, `expected several readings, got ${JSON.stringify(samples)}`);
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i].step > samples[i - 1].step, `step must rise: ${JSON.stringify(samples)}`);
  }
  const first = samples[0].loss;
  const last = mean(samples.slice(-3).map((s) => s.loss));
  assert.ok(first > 1.5, `an untrained 10-class net starts near ln(10) = 2.3, got ${first} at step ${samples[0].step}`);
  assert.ok(last < first * drop, `loss should fall below ${drop} x ${first.toFixed(3)}, got ${last.toFixed(3)} (${JSON.stringify(samples.slice(-3))})`);
  return { first, last, samples };
}

test('cpu: play trains (step rises, loss falls), pause stops, step-once adds one', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=3`);
    await waitReady(page);
    assert.equal(await page.locator('[data-testid="backend"]').getAttribute('data-backend'), 'cpu');
    assert.match(await text(page, 'backend'), /cpu/i);
    assert.equal(await number(page, 'step'), 0);

    const { first, last } = await playAndCheck(page, { steps: 150, drop: 0.6 });
    console.log(`cpu: loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);

    await page.click('[data-testid="pause"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="play"]').disabled === false);
    await page.waitForTimeout(300); // a call in flight may still land
    const paused = await number(page, 'step');
    await page.waitForTimeout(800);
    assert.equal(await number(page, 'step'), paused, 'step must not move while paused');

    await page.click('[data-testid="step-once"]');
    await waitForStep(page, paused + 1, 30_000);
    await page.waitForTimeout(500);
    assert.equal(await number(page, 'step'), paused + 1, 'single step adds exactly one step');

    // The probes ran: validation accuracy, filters and digits are shown.
    const val = await number(page, 'val-accuracy');
    assert.ok(val > 50 && val <= 100, `validation accuracy should be well above chance, got ${val}%`);
    assert.equal(await page.locator('[data-testid="digit"]').count(), 12);
    assert.match(await page.locator('[data-testid="digits"]').textContent(), /of 12 right/);
    assert.match(await page.locator('[data-testid="filters"]').textContent(), /8 filters of 1×5×5/);

    await page.click('[data-testid="reset"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="step"]').textContent === '0');

    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, `no error expected: ${await text(page, 'error')}`);
    assert.deepEqual(page.pageErrors, []);
    await screenshot(page, 'train-cpu');
  } finally {
    await env.close();
  }
});

test('webgpu (SwiftShader): choosing webgpu trains on the GPU path', { timeout: 420_000 }, async () => {
  const env = await launch();
  try {
    // SwiftShader runs WebGPU on the CPU, slowly: a small batch keeps steps short.
    const page = await openPage(env.browser, `${env.server.url}#backend=webgpu&batch=8&lr=0.003&seed=3`);
    await waitReady(page, 120_000);
    assert.equal(
      await page.locator('[data-testid="backend"]').getAttribute('data-backend'),
      'webgpu',
      `expected the GPU path, badge says "${await text(page, 'backend')}"`,
    );
    assert.match(await text(page, 'backend'), /webgpu/i);

    const { first, last } = await playAndCheck(page, { steps: 60, drop: 0.8 });
    console.log(`webgpu: loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    await page.click('[data-testid="pause"]');

    assert.equal(await page.locator('[data-testid="backend"]').getAttribute('data-backend'), 'webgpu', 'still on the GPU path');
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, `no error expected: ${await text(page, 'error')}`);
    assert.deepEqual(page.pageErrors, []);
    await screenshot(page, 'train-webgpu');
  } finally {
    await env.close();
  }
});
