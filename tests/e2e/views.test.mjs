// Inside a layer: for the chosen layer the page draws its kernels (conv), its output for a
// chosen validation example, a histogram of its weights with the share of zeros, and for
// batch norm its running statistics. Export saves weights.safetensors and model.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { launch, openPage, waitReady, playUntil, inkedPixels, text, errorText, screenshot } from './helpers.mjs';
import { encodeArch } from '../../web/src/arch.js';

/** Clicks an export button and returns the download; fails with the page's error if none comes. */
async function download(page, testid) {
  const event = page.waitForEvent('download', { timeout: 30_000 });
  await page.click(`[data-testid="${testid}"]`);
  const failed = page
    .locator('[data-testid="error"]')
    .waitFor({ state: 'visible', timeout: 30_000 })
    .then(async () => {
      throw new Error(`no download from ${testid}: ${await errorText(page)}`);
    });
  failed.catch(() => {});
  event.catch(() => {}); // the race below reports; a late rejection after it is no news
  return Promise.race([event, failed]);
}

/** Waits until the view note speaks of `layer` (a fresh view-result arrived for it). */
async function waitView(page, layer, example = null) {
  await page.waitForFunction(
    ([l, e]) => {
      const note = document.querySelector('[data-testid="view-note"]').textContent;
      return note.startsWith(`Layer ${l} (`) && (e === null || note.includes(`validation example ${e}.`));
    },
    [layer, example],
    { timeout: 20_000 },
  );
}

test('per-layer views: kernels, activations of a chosen example, weight histogram', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=4`);
    await waitReady(page);
    await playUntil(page, 30);

    // the default view is the first conv layer
    await waitView(page, '0');
    assert.equal(await page.inputValue('[data-testid="layer-select"]'), '0');
    assert.match(await text(page, 'layer-filters'), /8 filters of 1×5×5/);
    assert.ok((await inkedPixels(page, 'layer-filters')) > 100, 'the kernels are drawn');
    assert.match(await text(page, 'activations'), /conv2d: 8 maps of 28×28/);
    assert.ok((await inkedPixels(page, 'activations')) > 100, 'the maps are drawn');

    // the second conv: 16 filters, a row per filter and a column per input channel
    await page.selectOption('[data-testid="layer-select"]', '3');
    await waitView(page, '3');
    assert.match(await page.evaluate(() => location.hash), /&layer=3&/);
    assert.match(await text(page, 'layer-filters'), /16 filters of 8×5×5.*a row per filter/);
    assert.ok((await inkedPixels(page, 'layer-filters')) > 500);
    assert.match(await text(page, 'activations'), /16 maps of 14×14/);

    // another example: the input digit and its label change with it
    const firstDigit = await page.evaluate(() => document.querySelector('[data-testid="example-image"]').toDataURL());
    await page.fill('[data-testid="example"]', '5');
    await page.locator('[data-testid="example"]').blur();
    await waitView(page, '3', 5);
    assert.match(await page.locator('.example-caption').textContent(), /^example 5 · label \d$/);
    assert.notEqual(await page.evaluate(() => document.querySelector('[data-testid="example-image"]').toDataURL()), firstDigit);
    assert.ok((await inkedPixels(page, 'example-image')) > 50);
    await page.click('[data-testid="example-next"]');
    await waitView(page, '3', 6);
    assert.equal(await page.inputValue('[data-testid="example"]'), '6');

    // a layer without parameters has no kernels; the flat output is a strip of values
    await page.selectOption('[data-testid="layer-select"]', '7');
    await waitView(page, '7');
    assert.equal(await page.locator('.view-filters').isVisible(), false);
    assert.match(await text(page, 'activations'), /^10 values in .*; the largest is #\d$/);

    // the weight histogram and the zero shares (weights())
    assert.doesNotMatch(await text(page, 'view-note'), /lacks/, 'this build has every probe');
    assert.match(await text(page, 'zero-share'), /^\d+\.\d%$/);
    assert.match(await text(page, 'near-zero-share'), /^\d+\.\d%$/);
    assert.match(await text(page, 'weights-stats'), /^7,840 · ‖w‖/, 'the linear weight 10×784 (its bias is not a weight)');
    assert.match(await text(page, 'model-zero-share'), /%.*%/);
    assert.ok(await page.locator('[data-testid="weights-histogram"] canvas').count() > 0);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    await screenshot(page, 'views');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('L1 as a proximal step makes exact zeros; the zero share shows it (and is 0 without)', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const shares = {};
    for (const l1 of [0, 0.01]) {
      const page = await openPage(env.browser, `${env.server.url}#backend=cpu&optimizer=sgd&lr=0.1&l1=${l1}&l1_mode=proximal&layer=7`);
      await waitReady(page);
      await playUntil(page, 40);
      const step = await text(page, 'step');
      await page.waitForFunction((s) => document.querySelector('[data-testid="view-note"]').textContent.includes(`at step ${s},`), step);
      shares[l1] = Number.parseFloat(await text(page, 'zero-share'));
      assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
      await page.close();
    }
    assert.equal(shares[0], 0, 'plain SGD leaves no weight exactly at 0');
    assert.ok(shares[0.01] > 5, `soft thresholding zeroes weights: ${shares[0.01]}% of the linear layer`);
  } finally {
    await env.close();
  }
});

test('batch-norm layer: running mean and variance per channel', { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const layers = [
      { type: 'conv2d', out: 8, kernel: 5, padding: 'same' },
      { type: 'batch_norm' },
      { type: 'relu' },
      { type: 'max_pool', size: 4 },
      { type: 'flatten' },
      { type: 'linear', out: 10 },
    ];
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&layer=1&arch=${encodeArch(layers)}`);
    await waitReady(page);
    await playUntil(page, 10);
    await waitView(page, '1');
    assert.equal(await page.locator('.view-bn').isVisible(), true);
    const bars = await page.evaluate(() => document.querySelector('[data-testid="bn-stats"] .u-legend').textContent);
    assert.match(bars, /mean.*var/);
    // zero shares are what L1 makes of weights; for γ and β they mean nothing: hidden
    assert.equal(await page.locator('[data-testid="zero-share"]').isVisible(), false);
    assert.equal(await page.locator('[data-testid="near-zero-share"]').isVisible(), false);
    assert.match(await text(page, 'weights-stats'), /^16 · ‖w‖/, 'γ and β of 8 channels');
    // the conv layer before it shows them
    await page.selectOption('[data-testid="layer-select"]', '0');
    await waitView(page, '0');
    assert.equal(await page.locator('[data-testid="zero-share"]').isVisible(), true);
    assert.match(await text(page, 'zero-share'), /^\d+\.\d%$/);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
  } finally {
    await env.close();
  }
});

test('export: weights.safetensors and model.py download', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    await playUntil(page, 5);

    const weights = await download(page, 'export-weights');
    assert.equal(weights.suggestedFilename(), 'weights.safetensors');
    const bytes = fs.readFileSync(await weights.path());
    // safetensors: u64 little-endian header size, a JSON header, then the tensors
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
    assert.deepEqual(header['0.weight'].shape, [8, 1, 5, 5]);
    assert.equal(header['7.weight'].dtype, 'F32');
    const params = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .reduce((n, [, t]) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(params, 11274, 'every parameter of the standard net');
    assert.equal(bytes.length, 8 + headerLen + 4 * params);

    const py = await download(page, 'export-model-py');
    assert.equal(py.suggestedFilename(), 'model.py');
    const source = fs.readFileSync(await py.path(), 'utf8');
    assert.match(source, /INPUT_SHAPE/);
    assert.match(source, /import torch/);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('kernel tiles: one shared colour scale by default (said in the caption, in the URL); per-tile on request', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=4`);
    await waitReady(page);
    await playUntil(page, 5);
    await waitView(page, '0');
    // the first-layer panel: 8 tiles of 40 css px in a row, 6 px apart. How many tiles reach
    // the map's end colours (|w| = the scale: full blue or full orange)?
    const saturatedTiles = () =>
      page.evaluate(() => {
        const canvas = document.querySelector('[data-testid="filters"] canvas');
        const dpr = canvas.width / parseFloat(canvas.style.width);
        const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const full = (i) => [[37, 99, 235], [234, 88, 12]].some((c) => c.every((v, k) => Math.abs(d[i + k] - v) <= 1));
        let tiles = 0;
        for (let t = 0; t < 8; t++) {
          let hit = false;
          for (let y = 2; y < 38 * dpr && !hit; y++) {
            for (let x = Math.round((t * 46 + 2) * dpr); x < (t * 46 + 38) * dpr && !hit; x++) hit = full((y * canvas.width + x) * 4);
          }
          if (hit) tiles++;
        }
        return tiles;
      });
    for (const id of ['filters', 'layer-filters']) assert.match(await text(page, id), /one scale for all tiles: ±\d/);
    assert.equal(await page.inputValue('[data-testid="kernel-scale"]'), 'shared');
    assert.match(page.url(), /[#&]kernel_scale=shared(&|$)/);
    const shared = await saturatedTiles();
    assert.ok(shared >= 1 && shared < 8, `against one scale only the tile with the largest |w| reaches full colour: ${shared} of 8`);

    await page.selectOption('[data-testid="kernel-scale"]', 'tile');
    await page.waitForFunction(() => /each tile scaled to its own max/.test(document.querySelector('[data-testid="filters"]').textContent));
    assert.match(await text(page, 'layer-filters'), /each tile scaled to its own max/, 'both kernel views follow the one setting');
    assert.equal(await page.inputValue('[data-testid="layer-kernel-scale"]'), 'tile');
    assert.match(page.url(), /[#&]kernel_scale=tile(&|$)/);
    assert.equal(await saturatedTiles(), 8, 'each tile against its own max |w| reaches full colour');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
