// The page lays out at every width, for every task: on a phone (375 px) and at article /
// iframe width (800 px, the one-column layout under 900 px) nothing scrolls sideways, the
// controls keep their column, nothing lies over Play, and the Task and Model selects (and
// segmentation's Decoder) show their whole selected text; at 1280 px the selects still fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, layoutFacts, screenshot } from './helpers.mjs';
import { TASK_NAMES, TASKS } from '../../web/src/tasks.js';

test('every task lays out at 375, 800 and 1280 px: no sideways scroll, controls usable, selects unclipped', { timeout: 600_000 }, async () => {
  const env = await launch();
  try {
    for (const task of TASK_NAMES) {
      // the longest preset name of the task, so the Model select is tested at its widest
      const preset = [...TASKS[task].presets].sort((a, b) => b.length - a.length)[0];
      for (const width of [375, 800, 1280]) {
        const page = await openPage(env.browser, `${env.server.url}#task=${task}&preset=${preset}&backend=cpu`, {
          viewport: { width, height: 900 },
        });
        await waitReady(page);
        // the first probe's drawings (outputs, filters, digits, views) are in the layout
        await page.waitForFunction(() => document.querySelector('[data-testid="view-note"]').textContent.startsWith('Layer '), null, {
          timeout: 30_000,
        });
        const at = `${task} at ${width} px`;
        const f = await layoutFacts(page, ['task', 'preset', ...(task === 'segment' ? ['decoder'] : [])]);
        if (width < 900) {
          assert.ok(f.scrollWidth <= f.innerWidth, `${at}: the page scrolls sideways (${f.scrollWidth} > ${f.innerWidth})`);
          assert.ok(f.controlsWidth > 250, `${at}: the controls column is ${f.controlsWidth} px wide`);
        }
        assert.equal(f.playCovered, false, `${at}: Play is covered`);
        for (const s of f.selects) {
          assert.ok(s.needs <= s.has, `${at}: the ${s.id} select clips "${s.text}" (needs ${s.needs} px, has ${s.has})`);
        }
        if (width === 375) await screenshot(page, `layout-${task}-375`);
        assert.deepEqual(page.pageErrors, []);
        await page.close();
      }
    }
  } finally {
    await env.close();
  }
});
