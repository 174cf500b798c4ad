// The page stays responsive while it trains: over 20 s of training the default page, with
// the validation probes, the outputs and the per-layer views refreshing, no main-thread
// task takes over 50 ms (a long task: clicks and typing would wait for it). The drawing is
// spread over animation frames (main.js: FRAME_BUDGET_MS); a long one names its scripts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, watchLongTasks, text, errorText } from './helpers.mjs';

async function trainWatched(page, ms) {
  await waitReady(page);
  const watch = await watchLongTasks(page);
  const from = Number(await text(page, 'step'));
  await page.click('[data-testid="play"]');
  await page.waitForTimeout(ms);
  const seen = await watch.stop();
  await page.click('[data-testid="pause"]');
  const to = Number(await text(page, 'step'));
  return { ...seen, steps: to - from };
}

function report(seen) {
  const frames = seen.frames.slice(0, 3).map((f) => `${f.duration} ms frame (blocking ${f.blocking}): ${f.scripts.join('; ') || 'no script'}`);
  return `long tasks ${JSON.stringify(seen.tasks.slice(0, 5))}; ${frames.join(' | ')}`;
}

for (const [name, hash] of [
  ['the default page (classification, views on the first conv layer)', 'backend=cpu'],
  ['segmentation (24 output canvases per probe)', 'task=segment&backend=cpu&batch=8'],
]) {
  test(`no main-thread task over 50 ms while training ${name}`, { timeout: 180_000 }, async () => {
    const env = await launch();
    try {
      const page = await openPage(env.browser, `${env.server.url}#${hash}`);
      const seen = await trainWatched(page, 20_000);
      assert.ok(seen.steps > 10, `it trained (${seen.steps} steps; ${await errorText(page)})`);
      // the views and the outputs were redrawn meanwhile
      assert.match(await text(page, 'view-note'), /at step [1-9]\d*,/);
      assert.equal(seen.tasks.filter((t) => t.duration > 50).length, 0, report(seen));
      assert.deepEqual(page.pageErrors, []);
    } finally {
      await env.close();
    }
  });
}
