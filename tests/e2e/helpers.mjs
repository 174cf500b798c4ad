// Shared helpers for the end-to-end tests: Debian's Chromium through playwright-core
// (never a downloaded browser), the project's static server on a free port, and small
// readers for the page's data-testid readouts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RESULTS = path.join(ROOT, 'test-results');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const BASE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Chromium's software WebGPU (SwiftShader): a real WebGPU implementation, on the CPU. */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** Checks that the build the tests need exists, with a message that says what to run. */
export function assertBuilt() {
  for (const rel of ['web/pkg/cnn_playground.js', 'web/assets/mnist.bin', 'web/vendor/uPlot.esm.js']) {
    if (!fs.existsSync(path.join(ROOT, rel))) {
      throw new Error(`${rel} is missing: run \`npm run build\` before the end-to-end tests`);
    }
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`bash scripts/setup.sh --with-browser\``);
  }
}

/**
 * Starts the static server and a browser. `webgpu: false` launches Chromium without the
 * flags that expose SwiftShader, so navigator.gpu exists but requestAdapter() gives null.
 */
export async function launch({ webgpu = true, args = [] } = {}) {
  assertBuilt();
  const server = await startServer({ port: 0 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE_ARGS, ...(webgpu ? WEBGPU_ARGS : []), ...args],
  });
  return {
    server,
    browser,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/**
 * Opens the page and waits until the worker has built a model (play enabled) or reported
 * an error. Collects uncaught page errors in page.pageErrors (console errors, which
 * include Chromium's own WebGPU warnings, in page.consoleErrors: reported, not asserted).
 */
export async function openPage(browser, url, { viewport = { width: 1280, height: 900 } } = {}) {
  const page = await browser.newPage({ viewport });
  page.pageErrors = [];
  page.consoleErrors = [];
  page.on('pageerror', (err) => page.pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.consoleErrors.push(msg.text());
  });
  // Heavy work starts at once; do not wait for 'load', wait for the readouts.
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector('[data-testid="step"]');
  return page;
}

/** Waits until the model is built (play enabled); fails with the page's error text if any. */
export async function waitReady(page, timeout = 60_000) {
  let failed = false;
  try {
    // ready, or a model that did not build (then fail at once, with the page's message)
    failed = await (
      await page.waitForFunction(
        () => {
          const play = document.querySelector('[data-testid="play"]');
          const badge = document.querySelector('[data-testid="backend"]');
          const error = document.querySelector('[data-testid="error"]');
          if (!error.hidden && /could not build the model/.test(error.textContent)) return 'failed';
          return play && !play.disabled && badge.dataset.backend !== 'none' && 'ready';
        },
        null,
        { timeout },
      )
    ).jsonValue() === 'failed';
  } catch (err) {
    throw new Error(`the page did not become ready: ${await errorText(page)} (${err.message.split('\n')[0]})`);
  }
  if (failed) throw new Error(`the page did not become ready: ${await errorText(page)}`);
}

export async function text(page, testid) {
  return (await page.locator(`[data-testid="${testid}"]`).textContent())?.trim() ?? '';
}

export async function number(page, testid) {
  return Number.parseFloat(await text(page, testid));
}

export async function errorText(page) {
  const box = page.locator('[data-testid="error"]');
  return (await box.isVisible()) ? `error box: "${(await box.textContent()).trim()}"` : 'no error shown';
}

/** Waits until the step readout reaches `target`; fails with the page's state if not. */
export async function waitForStep(page, target, timeout = 90_000) {
  try {
    await page.waitForFunction(
      (t) => Number(document.querySelector('[data-testid="step"]').textContent) >= t,
      target,
      { timeout, polling: 100 },
    );
  } catch {
    throw new Error(
      `step did not reach ${target} in ${timeout} ms (step ${await text(page, 'step')}, ` +
        `phase "${await text(page, 'phase')}", backend "${await text(page, 'backend')}", ${await errorText(page)})`,
    );
  }
}

/** Samples (step, loss) every `every` ms while `until` steps are not reached. */
export async function sampleLoss(page, untilStep, { every = 150, timeout = 120_000 } = {}) {
  const samples = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    const step = await number(page, 'step');
    const loss = await number(page, 'loss');
    if (Number.isFinite(loss) && (samples.length === 0 || samples.at(-1).step !== step)) {
      samples.push({ step, loss });
    }
    if (step >= untilStep) return samples;
    if (Date.now() > deadline) {
      throw new Error(`step ${step} did not reach ${untilStep} in ${timeout} ms (${await errorText(page)})`);
    }
    await page.waitForTimeout(every);
  }
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function screenshot(page, name) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Plays until the step readout reaches `target`, then pauses and waits until play is enabled again. */
export async function playUntil(page, target, timeout = 90_000) {
  await page.click('[data-testid="play"]');
  await waitForStep(page, target, timeout);
  await page.click('[data-testid="pause"]');
  await page.waitForFunction(() => !document.querySelector('[data-testid="play"]').disabled, null, { timeout: 30_000 });
}

/** After a change that builds a new model (from a run past step 0): waits for step 0, then ready. */
export async function waitRebuilt(page, timeout = 60_000) {
  try {
    await page.waitForFunction(() => document.querySelector('[data-testid="step"]').textContent === '0', null, { timeout });
  } catch {
    throw new Error(`no new model: step is still ${await text(page, 'step')} (${await errorText(page)})`);
  }
  await waitReady(page, timeout);
}

/** The kinds of the layer editor's rows, in order. */
export async function editorKinds(page) {
  return page.$$eval('[data-testid="layer-row"]', (rows) => rows.map((r) => r.dataset.kind));
}

/** The texts of the layer picker's options (from the built model's summary()). */
export async function pickerLayers(page) {
  return page.$$eval('[data-testid="layer-select"] option', (options) => options.map((o) => o.textContent));
}

/** How many pixels of the first canvas inside [data-testid=testid] are not blank or near-white. */
export async function inkedPixels(page, testid) {
  return page.evaluate((id) => {
    const canvas = document.querySelector(`[data-testid="${id}"] canvas`) ?? document.querySelector(`canvas[data-testid="${id}"]`);
    if (!canvas || canvas.width === 0 || canvas.height === 0) return 0;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235)) n++;
    }
    return n;
  }, testid);
}

/**
 * How the page lays out at the current viewport: document and window widths, the controls
 * column's width, whether Play is covered (its box meets the readouts panel's, or another
 * element is on top at its centre), and for each select named in `selects` the width its
 * selected text needs against the width it has (inner width less padding and Chromium's
 * drop-down arrow). A select's scrollWidth does not grow with clipped option text, so the
 * text is measured with the select's own font on a canvas.
 */
export async function layoutFacts(page, selects = ['task', 'preset']) {
  return page.evaluate((ids) => {
    const box = (el) => el.getBoundingClientRect();
    const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const play = document.querySelector('[data-testid="play"]');
    play.scrollIntoView({ block: 'center' });
    const p = box(play);
    const top = document.elementFromPoint(p.left + p.width / 2, p.top + p.height / 2);
    const ARROW = 22; // css px Chromium keeps for the select's arrow
    const ctx = document.createElement('canvas').getContext('2d');
    const fits = ids.map((id) => {
      const el = document.querySelector(`[data-testid="${id}"]`);
      const cs = getComputedStyle(el);
      ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const text = el.selectedOptions[0]?.text ?? '';
      const needs = ctx.measureText(text).width;
      const has = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - ARROW;
      return { id, text, needs: Math.ceil(needs), has: Math.floor(has) };
    });
    return {
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      controlsWidth: box(document.querySelector('.controls')).width,
      playCovered: meet(p, box(document.querySelector('.readouts'))) || !(top === play || play.contains(top)),
      selects: fits,
    };
  }, selects);
}

/**
 * Watches the page's main thread for long tasks (over 50 ms: PerformanceObserver
 * 'longtask'), and for long animation frames ('long-animation-frame', where Chromium has
 * it) to name the scripts that ran in them. Returns {stop}: stop() ends the watch and
 * gives {tasks: [{start, duration}] longest first, frames: [{start, duration, blocking,
 * scripts: ["invoker function@file:char 12ms", ...]}] longest first, over 50 ms}. Use it
 * around a stretch of training:
 *   const watch = await watchLongTasks(page); ...; const { tasks, frames } = await watch.stop();
 */
export async function watchLongTasks(page) {
  await page.evaluate(() => {
    const seen = { tasks: [], frames: [] };
    for (const o of window.__longTaskObservers ?? []) o.disconnect();
    const tasks = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) seen.tasks.push({ start: Math.round(e.startTime), duration: Math.round(e.duration) });
    });
    tasks.observe({ type: 'longtask' });
    window.__longTaskObservers = [tasks];
    if (PerformanceObserver.supportedEntryTypes.includes('long-animation-frame')) {
      const frames = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          if (e.duration <= 50) continue;
          seen.frames.push({
            start: Math.round(e.startTime),
            duration: Math.round(e.duration),
            blocking: Math.round(e.blockingDuration),
            scripts: e.scripts.map(
              (x) => `${x.invoker} ${x.sourceFunctionName || '?'}@${(x.sourceURL || '').split('/').pop()}:${x.sourceCharPosition} ${Math.round(x.duration)}ms`,
            ),
          });
        }
      });
      frames.observe({ type: 'long-animation-frame' });
      window.__longTaskObservers.push(frames);
    }
    window.__longTaskSeen = seen;
  });
  return {
    async stop() {
      return page.evaluate(() => {
        for (const o of window.__longTaskObservers) o.disconnect();
        const { tasks, frames } = window.__longTaskSeen;
        const longest = (a, b) => b.duration - a.duration;
        return { tasks: [...tasks].sort(longest), frames: [...frames].sort(longest) };
      });
    },
  };
}
