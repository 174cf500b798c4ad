// The course's last chapters in the real page: localization, detection, segmentation and
// transfer learning, picked in the page or by link, trained live on the CPU backend (and
// one task on WebGPU / SwiftShader), with their outputs drawn as they learn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, waitRebuilt, playUntil, text, number, errorText, screenshot } from './helpers.mjs';

/** The outputs view: its step, and per figure the drawn box counts / overlay ink. */
async function outputs(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-testid="outputs"]');
    const ink = (canvas) => {
      if (!canvas) return 0;
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    };
    const colored = (canvas) => {
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7;
      return sum;
    };
    return {
      step: Number(root.dataset.step || -1),
      task: root.dataset.task,
      figures: [...root.querySelectorAll('[data-testid="output"]')].map((f) => ({
        pred: Number(f.dataset.predBoxes ?? -1),
        truth: Number(f.dataset.truthBoxes ?? -1),
        iou: Number(f.dataset.iou ?? NaN),
        caption: f.querySelector('figcaption').textContent,
        boxInk: ink(f.querySelector('[data-testid="output-boxes"]')),
        image: f.querySelector('canvas') ? colored(f.querySelector('canvas')) : 0,
        masks: [...f.querySelectorAll('canvas[data-testid^="mask-"]')].map((c) => colored(c)),
      })),
    };
  });
}

/** Waits until the outputs view shows a probe at or after `step`. */
async function waitOutputs(page, step, timeout = 60_000) {
  try {
    await page.waitForFunction((s) => Number(document.querySelector('[data-testid="outputs"]').dataset.step || -1) >= s, step, {
      timeout,
      polling: 100,
    });
  } catch {
    throw new Error(`no outputs drawn at step ${step} (${await errorText(page)})`);
  }
  return outputs(page);
}

/** Moves a range input as a drag does: value, then an input event. */
async function slide(page, testid, value) {
  await page.locator(`[data-testid="${testid}"]`).evaluate((el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

const hashParam = (page, key) => new URL(page.url()).hash.match(new RegExp(`[#&]${key}=([^&]*)`))?.[1];

test('localization and detection train live and draw their boxes; NMS and score sliders redraw at once', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#task=localize&backend=cpu&batch=16&lr=0.003`);
    await waitReady(page);
    assert.equal(await page.locator('[data-testid="task"]').inputValue(), 'localize');
    assert.equal(await page.locator('[data-testid="preset"]').inputValue(), 'shapes-localize');
    assert.ok(await page.locator('[data-testid="box-weight"]').isVisible(), 'the box weight is a localization knob');
    assert.ok(!(await page.locator('[data-testid="dice"]').isVisible()), 'the Dice weight is not');
    const first = await waitOutputs(page, 0);
    assert.equal(first.task, 'localize');
    assert.equal(first.figures.length, 8);
    for (const f of first.figures) {
      assert.equal(f.truth, 1, 'one true box per localization image');
      assert.equal(f.pred, 1, 'one predicted box per localization image');
      assert.ok(f.boxInk > 100, 'the boxes are drawn on the overlay');
    }
    await playUntil(page, 60, 120_000);
    const later = await waitOutputs(page, 60);
    assert.notDeepEqual(later.figures.map((f) => f.iou), first.figures.map((f) => f.iou), 'the boxes move while it trains');
    assert.match(await text(page, 'loss-parts'), /^box [\d.]+ · class [\d.]+$/);
    assert.match(await text(page, 'val-metric-label'), /mean IoU/);
    assert.ok(Number.isFinite(await number(page, 'val-metric')), `val metric "${await text(page, 'val-metric')}"`);
    await screenshot(page, 'task-localize');

    // to detection through the picker: its own presets, its own knobs, a new run
    await page.selectOption('[data-testid="task"]', 'detect');
    await waitRebuilt(page);
    assert.deepEqual(await page.$$eval('[data-testid="preset"] option', (os) => os.map((o) => o.value)), ['shapes-detect', 'clutter-detect']);
    assert.equal(hashParam(page, 'preset'), 'shapes-detect');
    await playUntil(page, 20, 120_000);
    const before = await waitOutputs(page, 20);
    const pausedAt = await number(page, 'step');
    assert.ok(before.figures.every((f) => f.truth >= 1 && f.truth <= 4), 'scenes hold 1–4 objects');
    // every cell of the 8×8 grid survives at score 0 and NMS IoU 1: the sliders reach the decoder
    await slide(page, 'score-threshold', 0);
    await slide(page, 'nms-iou', 1);
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="output"]')].every((f) => f.dataset.predBoxes === '64'),
      null,
      { timeout: 30_000 },
    );
    assert.equal(await number(page, 'step'), pausedAt, 'redrawn without training');
    assert.equal(hashParam(page, 'score_threshold'), '0');
    assert.equal(hashParam(page, 'nms_iou'), '1');
    await slide(page, 'score-threshold', 0.95);
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid="output"]')].every((f) => Number(f.dataset.predBoxes) < 64),
      null,
      { timeout: 30_000 },
    );
    assert.match(await text(page, 'loss-parts'), /^box [\d.]+ · class [\d.]+ · objectness [\d.]+$/);
    await screenshot(page, 'task-detect');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('segmentation: masks beside the truth for every decoder, U-Net skips, Dice as a live term', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#task=segment&backend=cpu&batch=4&lr=0.003`);
    await waitReady(page);
    assert.equal(await page.locator('[data-testid="decoder"]').inputValue(), 'transposed');
    assert.equal(await page.locator('[data-testid="unet"]').isChecked(), false);
    await playUntil(page, 6, 120_000);
    const a = await waitOutputs(page, 6);
    assert.equal(a.figures.length, 8);
    for (const f of a.figures) {
      assert.equal(f.masks.length, 3, 'prediction, truth and foreground probability');
      assert.notEqual(f.masks[0], f.masks[1], 'the prediction is not the truth');
    }
    assert.match(await text(page, 'loss-parts'), /–|pixel_ce/);

    // Dice joins the loss from the next step, in the same run
    const step = await number(page, 'step');
    await page.fill('[data-testid="dice"]', '1');
    await page.press('[data-testid="dice"]', 'Enter');
    await page.click('[data-testid="step-once"]');
    await waitForStep(page, step + 1);
    await page.waitForFunction(() => /dice [\d.]+ · pixel_ce [\d.]+/.test(document.querySelector('[data-testid="loss-parts"]').textContent));

    for (const [decoder, unet, layerKind] of [
      ['unpool', false, 'max_unpool'],
      ['unpool', true, 'concat'],
      ['resize', true, 'upsample'],
    ]) {
      await page.selectOption('[data-testid="decoder"]', decoder);
      if ((await page.locator('[data-testid="unet"]').isChecked()) !== unet) await page.click('[data-testid="unet"]');
      const name = `shapes-segment-${decoder}${unet ? '-unet' : ''}`;
      await page.waitForFunction((n) => new URL(location.href).hash.includes(`preset=${n}&`), name);
      await waitRebuilt(page);
      assert.equal(await page.locator('[data-testid="preset"]').inputValue(), name);
      const layers = await page.$$eval('[data-testid="layer-select"] option', (os) => os.map((o) => o.textContent));
      assert.ok(layers.some((l) => l.includes(`· ${layerKind} →`)), `${name} has a ${layerKind} layer: ${layers.join(', ')}`);
      if (unet) assert.ok(layers.some((l) => l.includes('· concat →')), `${name} has skip connections`);
      await page.click('[data-testid="step-once"]');
      const o = await waitOutputs(page, 1);
      assert.ok(o.figures.every((f) => f.masks.length === 3 && f.masks[2] > 0), `${name}: masks drawn`);
    }
    await screenshot(page, 'task-segment');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('transfer: the fine-tuned run and its from-scratch twin train side by side; freeze is live', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#task=transfer&backend=cpu&batch=50&lr=0.003`);
    await waitReady(page);
    assert.match(await text(page, 'task-note'), /Fine-tuning from backbone-digits04\.safetensors .*loaded 4 tensors; the new head \(7\.weight, 7\.bias\)/);
    assert.equal(await page.locator('[data-testid="freeze-0"]').isChecked(), true);
    assert.equal(await page.locator('[data-testid="freeze-3"]').isChecked(), true);
    assert.equal(await page.locator('[data-testid="freeze-7"]').count(), 0, 'the new head always trains');
    // ten single steps: the same batches for both runs
    for (let i = 1; i <= 10; i++) {
      await page.click('[data-testid="step-once"]');
      await waitForStep(page, i);
    }
    await waitOutputs(page, 10);
    const finetuned = await number(page, 'val-accuracy');
    const scratch = await number(page, 'val-metric');
    assert.ok(finetuned > scratch, `after 10 steps the fine-tuned run (${finetuned}%) leads the one from scratch (${scratch}%)`);
    const o = await outputs(page);
    assert.ok(o.figures.every((f) => /^[5-9]/.test(f.caption)), `digits 5–9 only: ${o.figures.map((f) => f.caption)}`);

    // unfreezing applies live (no new run); more labels is a new run
    await page.click('[data-testid="freeze-0"]');
    await page.waitForFunction(() => /freeze=3(&|$)/.test(location.hash));
    assert.equal(await number(page, 'step'), 10, 'freeze changes keep the run');
    await page.click('[data-testid="step-once"]');
    await waitForStep(page, 11);
    await page.selectOption('[data-testid="labels-per-class"]', '100');
    await waitRebuilt(page);
    await screenshot(page, 'task-transfer');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('a bad task link is named and fixed; a task trains on WebGPU (SwiftShader)', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#task=detect&preset=mnist-small&nms_iou=7&freeze=a;b&backend=webgpu&batch=2`);
    await waitReady(page, 120_000);
    const error = await text(page, 'error');
    assert.match(error, /"mnist-small" is not a detect preset \(it belongs to classify\); using shapes-detect/);
    assert.match(error, /NMS IoU threshold \(nms_iou\): 7 is above the maximum/);
    assert.match(error, /frozen layers \(freeze\): "a;b" is not a list of layer names/);
    assert.equal(await page.locator('[data-testid="preset"]').inputValue(), 'shapes-detect');
    assert.equal(hashParam(page, 'nms_iou'), '0.5');
    assert.equal(await page.locator('[data-testid="backend"]').getAttribute('data-backend'), 'webgpu');
    await page.click('[data-testid="step-once"]');
    await waitForStep(page, 1, 120_000);
    await page.click('[data-testid="step-once"]');
    await waitForStep(page, 2, 120_000);
    assert.ok(Number.isFinite(await number(page, 'loss')), `loss "${await text(page, 'loss')}"`);
    const o = await waitOutputs(page, 2, 120_000);
    assert.equal(o.figures.length, 8);
    assert.equal(await page.locator('[data-testid="backend"]').getAttribute('data-backend'), 'webgpu', 'still on WebGPU');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
