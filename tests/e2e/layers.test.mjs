// The layer editor: every edit is checked by the Rust side (check_spec); a layer that does
// not fit shows its error inline, naming it, and apply stays disabled until it is fixed;
// apply builds the edited model, which trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitRebuilt, playUntil, editorKinds, pickerLayers, number, text, screenshot } from './helpers.mjs';

const row = (i) => `[data-testid="layer-row"][data-index="${i}"]`;

async function waitApply(page, enabled) {
  await page.waitForFunction(
    (want) => document.querySelector('[data-testid="arch-apply"]').disabled === !want,
    enabled,
    { timeout: 10_000 },
  );
}

test('add a layer that does not fit: inline error naming it, apply disabled; fix it, apply, it trains', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=2`);
    await waitReady(page);
    await page.waitForFunction(() => /11\.3k params/.test(document.querySelector('[data-testid="editor-totals"]').textContent));
    assert.equal(await page.isDisabled('[data-testid="arch-apply"]'), true, 'nothing to apply yet');
    assert.match(await page.locator(`${row(5)} [data-testid="layer-out"]`).textContent(), /→ 16×7×7/);
    await playUntil(page, 10);

    // a max_pool after the second pool (16×7×7), with a window too large for it
    await page.selectOption('[data-testid="layer-add-kind"]', 'max_pool');
    await page.selectOption('[data-testid="layer-add-at"]', '6'); // after layer 5
    await page.click('[data-testid="layer-add"]');
    assert.deepEqual(await editorKinds(page), ['conv2d', 'relu', 'max_pool', 'conv2d', 'relu', 'max_pool', 'max_pool', 'flatten', 'linear']);
    await page.fill(`${row(6)} [data-testid="layer-param"][data-param="size"]`, '40');
    const error = page.locator(`${row(6)} [data-testid="layer-error"]`);
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await error.textContent(), /^layer 6 \(max_pool\): window 40 is larger than the 7×7 input \(input shape \[16, 7, 7\]\)$/);
    assert.equal(await page.locator(`${row(6)} [data-testid="layer-out"]`).textContent(), '✗');
    await waitApply(page, false);
    assert.match(await text(page, 'editor-status'), /fix the marked layers/);

    // a value that is not a number is refused inline too
    await page.fill(`${row(6)} [data-testid="layer-param"][data-param="size"]`, 'big');
    await page.waitForFunction(
      (sel) => /size: "big" is not a whole number/.test(document.querySelector(sel).textContent),
      `${row(6)} [data-testid="layer-error"]`,
    );
    await waitApply(page, false);

    // fixed: the row shows its shape, the totals update, apply is enabled
    await page.fill(`${row(6)} [data-testid="layer-param"][data-param="size"]`, '2');
    await error.waitFor({ state: 'hidden', timeout: 10_000 });
    assert.match(await page.locator(`${row(6)} [data-testid="layer-out"]`).textContent(), /^→ 16×3×3$/);
    await waitApply(page, true);
    assert.match(await text(page, 'editor-totals'), /^9 layers · /);
    assert.equal(await number(page, 'step') >= 10, true, 'editing does not touch the running model');

    await page.click('[data-testid="arch-apply"]');
    await waitRebuilt(page);
    assert.equal((await pickerLayers(page)).length, 9, 'the new model has the added layer');
    assert.match((await pickerLayers(page))[6], /^6 · max_pool → 16×3×3$/);
    assert.match(await page.evaluate(() => location.hash), /&arch=[A-Za-z0-9_-]+$/);
    await waitApply(page, false);
    assert.match(await text(page, 'editor-status'), /the running model/);
    await playUntil(page, 20);
    assert.ok(Number.isFinite(await number(page, 'loss')), 'the edited model trains');
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    await screenshot(page, 'layers-edited');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('move, remove and discard: the draft follows, the running model does not', { timeout: 120_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    // flatten moved above the last pool: that pool now gets a flat input
    await page.click(`${row(6)} [data-testid="layer-up"]`);
    assert.deepEqual(await editorKinds(page), ['conv2d', 'relu', 'max_pool', 'conv2d', 'relu', 'flatten', 'max_pool', 'linear']);
    const error = page.locator(`${row(6)} [data-testid="layer-error"]`);
    await error.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await error.textContent(), /layer 6 \(max_pool\)/);
    await waitApply(page, false);
    await page.click(`${row(6)} [data-testid="layer-remove"]`);
    await waitApply(page, true);
    assert.match(await page.locator(`${row(6)} [data-testid="layer-out"]`).textContent(), /→ 10 · 31\.4k params/);

    await page.click('[data-testid="arch-revert"]');
    await waitApply(page, false);
    assert.deepEqual(await editorKinds(page), ['conv2d', 'relu', 'max_pool', 'conv2d', 'relu', 'max_pool', 'flatten', 'linear']);
    assert.equal(await page.isDisabled('[data-testid="arch-revert"]'), true);

    // names and inputs: a layer reading one that does not exist is named
    await page.check('[data-testid="layer-show-meta"]');
    await page.fill(`${row(4)} [data-testid="layer-inputs"]`, 'nowhere');
    const named = page.locator(`${row(4)} [data-testid="layer-error"]`);
    await named.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await named.textContent(), /layer 4 \(relu\): reads "nowhere", but no layer has that name/);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, 'editing errors stay in the editor');
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});
