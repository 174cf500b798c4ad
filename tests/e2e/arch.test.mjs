// The architecture toggles as a reader uses them: switching batch norm builds a new model
// (fresh weights, step 0) with batch_norm layers, which trains; the edited layers live in
// the URL (`arch`), so a link restores them; a garbage or invalid `arch` gives a message
// that names it and the page runs the preset instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch,
  openPage,
  waitReady,
  waitRebuilt,
  playUntil,
  editorKinds,
  pickerLayers,
  number,
  text,
  screenshot,
} from './helpers.mjs';
import { encodeArch } from '../../web/src/arch.js';

const SMALL = ['conv2d', 'relu', 'max_pool', 'conv2d', 'relu', 'max_pool', 'flatten', 'linear'];

async function hashArch(page) {
  return page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('arch'));
}

test('batch norm toggle: a new model with batch_norm layers that trains; off gives the preset back', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=3`);
    await waitReady(page);
    assert.deepEqual(await editorKinds(page), SMALL);
    assert.equal(await page.isChecked('[data-testid="arch-bn"]'), false);
    await playUntil(page, 20);
    const plainLoss = await text(page, 'loss');

    await page.check('[data-testid="arch-bn"]');
    await waitRebuilt(page);
    assert.equal(await text(page, 'loss'), '–', 'a new model starts without a loss reading');
    assert.deepEqual(await editorKinds(page), [
      'conv2d', 'batch_norm', 'relu', 'max_pool', 'conv2d', 'batch_norm', 'relu', 'max_pool', 'flatten', 'linear',
    ]);
    const picker = await pickerLayers(page);
    assert.equal(picker.filter((o) => /batch_norm/.test(o)).length, 2, `summary() layers: ${picker.join(' | ')}`);
    assert.match(await text(page, 'arch-summary'), /^10 layers · /);
    assert.ok(await hashArch(page), 'the edited layers are in the link');
    assert.equal(await page.isChecked('[data-testid="arch-bn"]'), true);

    await playUntil(page, 20);
    const bnLoss = await number(page, 'loss');
    assert.ok(Number.isFinite(bnLoss) && bnLoss < 2.3, `the batch-norm net learns: loss ${bnLoss} at step 20`);
    assert.notEqual(String(bnLoss), plainLoss, 'another model, another loss');
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    await screenshot(page, 'arch-batch-norm');

    await page.uncheck('[data-testid="arch-bn"]');
    await waitRebuilt(page);
    assert.deepEqual(await editorKinds(page), SMALL);
    assert.equal(await hashArch(page), null, 'the preset needs no arch in the link');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('every toggle: inception, NiN head, dropout; a link with arch restores them', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    await playUntil(page, 3);
    await page.check('[data-testid="arch-inception"]');
    await waitRebuilt(page);
    await playUntil(page, 3);
    await page.selectOption('[data-testid="arch-head"]', 'nin');
    await waitRebuilt(page);
    await playUntil(page, 3);
    await page.check('[data-testid="arch-dropout"]');
    await waitRebuilt(page);
    const kinds = ['conv2d', 'relu', 'max_pool', 'inception', 'max_pool', 'dropout', 'conv2d', 'global_avg_pool'];
    assert.deepEqual(await editorKinds(page), kinds);
    await playUntil(page, 10);
    assert.ok(Number.isFinite(await number(page, 'loss')), 'the combined model trains');
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));

    // the link restores the architecture and the controls read it back
    const url = await page.evaluate(() => location.href);
    const again = await openPage(env.browser, url);
    await waitReady(again);
    assert.deepEqual(await editorKinds(again), kinds);
    assert.equal(await again.isChecked('[data-testid="arch-inception"]'), true);
    assert.equal(await again.isChecked('[data-testid="arch-dropout"]'), true);
    assert.equal(await again.isChecked('[data-testid="arch-bn"]'), false);
    assert.equal(await again.inputValue('[data-testid="arch-head"]'), 'nin');
    assert.equal(await again.locator('[data-testid="error"]').isVisible(), false, await text(again, 'error'));
    assert.deepEqual([...page.pageErrors, ...again.pageErrors], []);
  } finally {
    await env.close();
  }
});

test('a garbage arch in the link: a named error, the preset runs, nothing else is lost', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&lr=0.002&layer=nope&arch=%25%25garbage`);
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await error.textContent(), /architecture \(arch\): the value is not base64url text/);
    await waitReady(page);
    assert.deepEqual(await editorKinds(page), SMALL);
    assert.equal(await page.inputValue('[data-testid="lr"]'), '0.002', 'the other settings are kept');
    assert.equal(await hashArch(page), null);
    // a layer name the model does not have is named too; the views show the first conv
    assert.match(await error.textContent(), /viewed layer \(layer\): the model has no layer "nope"; showing layer 0 instead/);
    assert.equal(await page.inputValue('[data-testid="layer-select"]'), '0');
    assert.doesNotMatch(await page.evaluate(() => location.hash), /layer=/);
    await playUntil(page, 10);
    assert.ok(Number.isFinite(await number(page, 'loss')));
    assert.doesNotMatch(await error.textContent(), /page error|worker/);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('a well-formed arch that does not validate: named per layer, kept in the editor to fix', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    // a conv after flatten cannot work: check_spec names layer 3
    const layers = [
      { type: 'conv2d', out: 4, kernel: 3, padding: 'same' },
      { type: 'relu' },
      { type: 'flatten' },
      { type: 'conv2d', out: 4, kernel: 3 },
      { type: 'linear', out: 10 },
    ];
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&arch=${encodeArch(layers)}`);
    const error = page.locator('[data-testid="error"]');
    await error.waitFor({ state: 'visible', timeout: 20_000 });
    const message = await error.textContent();
    assert.match(message, /architecture \(arch\): the link's layers do not validate/);
    assert.match(message, /layer 3 \(conv2d\): needs a \(C,H,W\) input/);
    await waitReady(page);
    // the model is the preset's; the editor holds the link's layers with the error inline
    assert.deepEqual((await pickerLayers(page)).length, 8);
    assert.deepEqual(await editorKinds(page), layers.map((l) => l.type));
    const row = page.locator('[data-testid="layer-row"][data-index="3"] [data-testid="layer-error"]');
    await row.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await row.textContent(), /layer 3 \(conv2d\): needs a \(C,H,W\) input/);
    assert.equal(await page.isDisabled('[data-testid="arch-apply"]'), true);

    await playUntil(page, 5);
    // fixing it (remove the bad conv) makes it valid; apply builds it
    await page.click('[data-testid="layer-row"][data-index="3"] [data-testid="layer-remove"]');
    await page.waitForFunction(() => !document.querySelector('[data-testid="arch-apply"]').disabled, null, { timeout: 10_000 });
    await page.click('[data-testid="arch-apply"]');
    await waitRebuilt(page);
    assert.deepEqual(await editorKinds(page), ['conv2d', 'relu', 'flatten', 'linear']);
    assert.equal(await error.isVisible(), false, await text(page, 'error'));
    await playUntil(page, 5);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('every preset builds and trains; its description is shown', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    const presets = await page.$$eval('[data-testid="preset"] option', (os) => os.map((o) => o.value));
    // the classification task's presets (the other tasks' are in tasks.test.mjs)
    assert.deepEqual(presets, [
      'mnist-small',
      'mnist-tiny',
      'mnist-nin',
      'mnist-inception',
      'mnist-mlp',
      'digits-pretrain',
      // the chapters' twins (batch-norm, dropout, network-in-network)
      'mnist-small-bn',
      'mnist-dropout',
      'mnist-inception-naive',
    ]);
    for (const name of presets) {
      if (name !== 'mnist-small') {
        await page.selectOption('[data-testid="preset"]', name);
        await waitRebuilt(page);
      }
      assert.match(await text(page, 'arch-description'), new RegExp(`^${name}: .{20,}`));
      await playUntil(page, 5);
      const loss = await number(page, 'loss');
      assert.ok(Number.isFinite(loss), `${name}: loss ${loss}`);
      assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, `${name}: ${await text(page, 'error')}`);
    }
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
