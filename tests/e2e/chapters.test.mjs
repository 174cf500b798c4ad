// The chapters on the page: every chapter link loads, trains a little and draws each of its
// instruments, shows its question and a live answer with numbers; the picker switches
// chapters; twins that differ in nothing draw identical curves; a new model keeps the
// previous run's curves as a reference; and the main thread stays responsive (no task over
// 50 ms) while a chapter trains with its instruments on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openPage, waitReady, waitForStep, playUntil, watchLongTasks, text, errorText, screenshot } from './helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const INDEX = path.join(ROOT, 'web/chapters/index.json');

function chapterList() {
  if (!fs.existsSync(INDEX)) throw new Error('web/chapters/index.json is missing: run `npm run build`');
  return JSON.parse(fs.readFileSync(INDEX, 'utf8'));
}

/** The instruments on the page: [{name, step}] (step null until drawn). */
async function instrumentSteps(page) {
  return page.$$eval('[data-testid="instrument"]', (els) =>
    els.map((e) => ({ name: e.dataset.instrument, step: e.dataset.step === undefined ? null : Number(e.dataset.step), note: e.querySelector('.inst-note')?.textContent ?? '' })),
  );
}

/** The points of a chart series, [[step, value], ...] (window.__charts, main.js). */
async function series(page, chart, key) {
  return page.evaluate(([c, k]) => window.__charts[c].points(k), [chart, key]);
}

// Instruments whose probe does not apply to a chapter's opening runs, and the link (keys
// over the chapter's state) where it does: the NiN chapter's class maps need the
// global-average-pool head of mnist-nin, which its explainer sends the reader to.
const ELSEWHERE = { 'network-in-network': { 'class-maps': '&preset=mnist-nin&twin=' } };

/** Opens a chapter link, trains past one probe_every, and checks the instruments named
 * `names` drew (data-step > 0); the others must say why they were not measured. */
async function trainAndDraw(env, chapter, extra, names, opened = null) {
  const page = opened ?? (await openPage(env.browser, `${env.server.url}#chapter=${chapter.slug}&backend=cpu${extra}`));
  await waitReady(page, 120_000);
  const target = Math.min(chapter.probe_every ?? 50, 60) + 2;
  await playUntil(page, target, 400_000);
  try {
    await page.waitForFunction(
      (want) => {
        const els = [...document.querySelectorAll('[data-testid="instrument"]')];
        return want.every((n) => els.some((e) => e.dataset.instrument === n && Number(e.dataset.step) > 0));
      },
      names,
      { timeout: 60_000, polling: 200 },
    );
  } catch {
    throw new Error(`${chapter.slug}${extra}: not every instrument drew after training: ${JSON.stringify(await instrumentSteps(page))} (${await errorText(page)})`);
  }
  return page;
}

test('every chapter link loads, trains, draws each of its instruments, and answers with numbers', { timeout: 1_500_000 }, async () => {
  const chapters = chapterList();
  assert.ok(chapters.length >= 6, `expected the six chapters of #10, got ${chapters.map((c) => c.slug)}`);
  const env = await launch();
  try {
    for (const chapter of chapters) {
      let page = await openPage(env.browser, `${env.server.url}#chapter=${chapter.slug}&backend=cpu`);
      await waitReady(page, 120_000);
      assert.equal(await text(page, 'chapter-question'), chapter.question.trim(), chapter.slug);
      assert.equal(await page.locator('[data-testid="chapter"]').inputValue(), chapter.slug);
      assert.match(await page.evaluate(() => location.hash), new RegExp(`chapter=${chapter.slug}`));
      const names = (await instrumentSteps(page)).map((i) => i.name);
      assert.deepEqual(names, chapter.instruments, `${chapter.slug}: its instruments, in order`);

      // a little training: past one probe_every, then pause (the instruments refresh)
      const elsewhere = ELSEWHERE[chapter.slug] ?? {};
      const drawn = names.filter((n) => !(n in elsewhere));
      const page2 = await trainAndDraw(env, chapter, '', drawn, page);
      for (const [name, extra] of Object.entries(elsewhere)) {
        const note = await page2.locator(`[data-instrument="${name}"] .inst-note`).textContent();
        assert.match(note, /^Not measured: /, `${chapter.slug}: ${name} says why it is not drawn here`);
        const there = await trainAndDraw(env, chapter, extra, [name]);
        assert.deepEqual(there.pageErrors, []);
        await there.close();
      }
      page = page2;
      const answer = await text(page, 'chapter-answer');
      assert.match(answer, /\d/, `${chapter.slug}: the answer has numbers: "${answer}"`);
      assert.ok(!/\{[ab]\./.test(answer), `${chapter.slug}: the template is filled: "${answer}"`);
      assert.deepEqual(page.pageErrors, [], chapter.slug);
      assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, `${chapter.slug}: ${await errorText(page)}`);
      await screenshot(page, `chapter-${chapter.slug}`);
      console.log(`${chapter.slug}: ${answer}`);
      await page.close();
    }
  } finally {
    await env.close();
  }
});

test('the picker switches chapters, and none is the plain dashboard', { timeout: 240_000 }, async () => {
  const chapters = chapterList();
  const [first, second] = chapters;
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#chapter=${first.slug}&backend=cpu`);
    await waitReady(page, 120_000);
    assert.equal(await text(page, 'chapter-question'), first.question.trim());
    // the chapter's controls first; the others folded away, still there
    const shown = await page.$$eval('[data-testid="chapter-controls"] [data-field]', (els) => els.map((e) => e.dataset.field));
    assert.deepEqual(shown, first.controls.filter((f) => shown.includes(f)));
    assert.ok(shown.length > 0, 'some chapter controls are shown first');
    assert.equal(await page.locator('[data-testid="more-controls"]').count(), 1);
    assert.equal(await page.locator('[data-testid="more-controls"] [data-field="seed"]').count(), 1, 'the seed is folded, still reachable');

    await page.selectOption('[data-testid="chapter"]', second.slug);
    await page.waitForFunction((q) => document.querySelector('[data-testid="chapter-question"]').textContent.trim() === q, second.question.trim());
    assert.match(await page.evaluate(() => location.hash), new RegExp(`chapter=${second.slug}`));
    assert.deepEqual((await instrumentSteps(page)).map((i) => i.name), second.instruments);
    await waitReady(page, 120_000);

    await page.selectOption('[data-testid="chapter"]', '');
    await page.waitForFunction(() => document.querySelector('[data-testid="chapter-panel"]').hidden);
    assert.doesNotMatch(await page.evaluate(() => location.hash), /chapter=/);
    assert.equal(await page.locator('[data-testid="instrument"]').count(), 0);
    assert.equal(await page.locator('[data-testid="more-controls"]').count(), 0, 'every control is back in place');
    assert.equal(await page.locator('aside.controls [data-field="seed"]').isVisible(), true);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    await env.close();
  }
});

test('twins that differ in nothing draw identical curves; a real difference does not', { timeout: 300_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu&seed=2`);
    await waitReady(page);
    // the twin control: B's learning rate, set to A's own
    await page.selectOption('[data-testid="twin-field"]', 'lr');
    assert.equal(await page.locator('[data-testid="twin-value"]').inputValue(), '0.001', "prefilled with A's value");
    await page.click('[data-testid="twin-set"]');
    await page.waitForFunction(() => /twin=lr:0\.001/.test(location.hash));
    assert.equal(await page.locator('[data-testid="twin"]').inputValue(), 'lr:0.001');
    await waitReady(page);
    await playUntil(page, 40);
    await page.waitForTimeout(500);
    for (const [chart, a, b] of [
      ['loss', 'train', 'train_b'],
      ['loss', 'val', 'val_b'],
      ['accuracy', 'train', 'train_b'],
      ['accuracy', 'val', 'val_b'],
    ]) {
      const pa = await series(page, chart, a);
      const pb = await series(page, chart, b);
      assert.ok(pa.length >= 3, `${chart}/${a}: several points (${pa.length})`);
      assert.deepEqual(pb, pa, `${chart}: ${b} must equal ${a} point for point`);
    }
    assert.equal(await page.locator('[data-testid="twin-panel"]').isVisible(), true);
    assert.equal(await text(page, 'twin-val-accuracy'), await text(page, 'val-accuracy'));

    // B with a larger learning rate is another run: its curve leaves A's
    await page.fill('[data-testid="twin"]', 'lr:0.01');
    await page.press('[data-testid="twin"]', 'Enter');
    await page.locator('[data-testid="twin"]').blur();
    await page.waitForFunction(() => /twin=lr:0\.01(&|$)/.test(location.hash));
    await page.waitForTimeout(300);
    await page.click('[data-testid="reset"]');
    await waitReady(page);
    await playUntil(page, 30);
    const a = await series(page, 'loss', 'train');
    const b = await series(page, 'loss', 'train_b');
    const at = (pts, step) => pts.find(([s]) => s === step)?.[1];
    const common = a.filter(([s]) => s > 5 && at(b, s) !== undefined);
    assert.ok(common.length > 3);
    assert.ok(common.some(([s, v]) => v !== at(b, s)), 'lr 0.01 trains differently from lr 0.001');

    // off: A alone
    await page.click('[data-testid="twin-off"]');
    await page.waitForFunction(() => !/twin=/.test(location.hash));
    assert.deepEqual(page.pageErrors, []);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await errorText(page));
  } finally {
    await env.close();
  }
});

test("a new model keeps the previous run's curves as a faded reference", { timeout: 240_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=cpu`);
    await waitReady(page);
    await playUntil(page, 25);
    await page.waitForTimeout(500);
    const before = await series(page, 'loss', 'train');
    assert.ok(before.length > 5);
    await page.check('[data-testid="arch-bn"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="step"]').textContent === '0');
    await waitReady(page);
    await page.waitForTimeout(300);
    assert.deepEqual(await series(page, 'loss', 'ref_train'), before, 'the reference is the previous run, point for point');
    assert.deepEqual(await series(page, 'loss', 'train'), [], 'the new run starts empty');
    await playUntil(page, 5);
    assert.ok((await series(page, 'loss', 'train')).length > 0);
    assert.deepEqual(await series(page, 'loss', 'ref_train'), before, 'and the reference stays beside it');
  } finally {
    await env.close();
  }
});

test('the main thread stays responsive: no task over 50 ms while a chapter trains with its instruments on', { timeout: 300_000 }, async () => {
  const chapters = chapterList();
  const chapter = chapters.find((c) => c.slug === 'l1-l2') ?? chapters[0];
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#chapter=${chapter.slug}&backend=cpu`);
    await waitReady(page, 120_000);
    // watched while it trains (the click on pause is not part of it), as responsive.test.mjs does
    const watch = await watchLongTasks(page);
    await page.click('[data-testid="play"]');
    const target = 3 * (chapter.probe_every ?? 50);
    await waitForStep(page, target, 240_000);
    const seen = await watch.stop();
    await page.click('[data-testid="pause"]');
    await page.waitForTimeout(1500);
    const steps = (await instrumentSteps(page)).map((i) => i.step);
    assert.ok(steps.every((s) => s >= 2 * (chapter.probe_every ?? 50)), `the instruments kept drawing: ${steps}`);
    const long = seen.tasks.map((t) => t.duration);
    const frames = seen.frames.slice(0, 3).map((f) => `${f.duration} ms frame: ${f.scripts.join('; ') || 'no script'}`);
    console.log(`${chapter.slug}: long tasks while training ${target} steps: ${JSON.stringify(long)} ${frames.join(' | ')}`);
    assert.ok(long.every((d) => d <= 50), `main-thread tasks over 50 ms: ${JSON.stringify(long)} ${frames.join(' | ')}`);
  } finally {
    await env.close();
  }
});
