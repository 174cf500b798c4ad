// Browser benchmark, in one headless Chromium run (Debian's, with SwiftShader WebGPU):
//   1. web/bench.html: one training step of the standard small net, batch 64, timed with
//      ConvNetJS and with our wasm CPU backend (and our WebGPU backend, few steps);
//   2. web/index.html: the longest main-thread task (PerformanceObserver 'longtask')
//      while training plays for ~10 s.
// Prints figures; asserts nothing about timings.
//
//   node scripts/bench-browser.mjs            (after npm run build)
//   BENCH_CPU_STEPS=20 BENCH_CONVNETJS_STEPS=5 BENCH_WEBGPU_STEPS=3 BENCH_PLAY_SECONDS=10
import { chromium } from 'playwright-core';
import { BASE_ARGS, WEBGPU_ARGS, CHROMIUM, assertBuilt } from '../tests/e2e/helpers.mjs';
import { startServer } from './serve.mjs';

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`bench: ${name} must be a whole number >= 0, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const CPU_STEPS = envInt('BENCH_CPU_STEPS', 20);
const CONVNETJS_STEPS = envInt('BENCH_CONVNETJS_STEPS', 5);
const WEBGPU_STEPS = envInt('BENCH_WEBGPU_STEPS', 3);
const PLAY_SECONDS = envInt('BENCH_PLAY_SECONDS', 10);

const fmt = (ms) => (ms == null ? 'n/a' : `${ms.toFixed(1)} ms`);

async function stepBench(browser, url) {
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error(`bench.html error: ${err.message}`));
  await page.goto(`${url}bench.html?cpu=${CPU_STEPS}&convnetjs=${CONVNETJS_STEPS}&webgpu=${WEBGPU_STEPS}`, {
    waitUntil: 'commit',
  });
  await page.waitForFunction(() => window.benchDone === true, null, { timeout: 30 * 60_000, polling: 500 });
  const { results, error, pageErrors } = await page.evaluate(() => ({
    results: window.benchResults,
    error: window.benchError,
    pageErrors: document.querySelector('[data-testid="error"]').hidden
      ? ''
      : document.querySelector('[data-testid="error"]').textContent.trim(),
  }));
  await page.close();
  if (error) throw new Error(`bench.html: ${error}`);
  if (pageErrors) console.log(`note from bench.html: ${pageErrors}`);
  return results;
}

async function longTaskBench(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (err) => console.error(`index.html error: ${err.message}`));
  // Observe from before the page's own scripts run.
  await page.addInitScript(() => {
    window.__longtasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await page.goto(`${url}#backend=cpu`, { waitUntil: 'commit' });
  await page.waitForFunction(() => !document.querySelector('[data-testid="play"]')?.disabled, null, {
    timeout: 120_000,
  });
  await page.waitForTimeout(500);
  const playAt = await page.evaluate(() => performance.now());
  await page.click('[data-testid="play"]');
  await page.waitForTimeout(PLAY_SECONDS * 1000);
  const r = await page.evaluate((t0) => {
    const during = window.__longtasks.filter((t) => t.start >= t0);
    const before = window.__longtasks.filter((t) => t.start < t0);
    return {
      during,
      before,
      step: Number(document.querySelector('[data-testid="step"]').textContent),
      speed: document.querySelector('[data-testid="speed"]').textContent,
    };
  }, playAt);
  await page.close();
  return r;
}

async function main() {
  assertBuilt();
  const server = await startServer({ port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...BASE_ARGS, ...WEBGPU_ARGS] });
  try {
    console.log(`Chromium ${browser.version()}, ${server.url}`);
    console.log('\n== one training step: standard small net, 28x28 MNIST, batch 64, SGD+momentum ==');
    const { results, speedup_cpu_vs_convnetjs: speedup } = await stepBench(browser, server.url);
    for (const r of results) {
      const extra = r.reason ? `  [${r.reason}]` : '';
      console.log(
        `${r.engine.padEnd(24)} ${r.backend.padEnd(7)} median ${fmt(r.median_ms).padStart(10)}  mean ${fmt(r.mean_ms).padStart(10)}` +
          `  (${r.steps} steps, ${((64 * 1000) / r.median_ms).toFixed(0)} images/s)${extra}`,
      );
    }
    if (speedup) console.log(`wasm CPU vs ConvNetJS: ${speedup.toFixed(2)}x faster (ConvNetJS ms/step / ours)`);

    if (PLAY_SECONDS > 0) {
      console.log(`\n== main-thread long tasks on index.html while training plays (cpu, ${PLAY_SECONDS} s) ==`);
      const lt = await longTaskBench(browser, server.url);
      const longest = (xs) => (xs.length ? Math.max(...xs.map((t) => t.duration)) : 0);
      console.log(`trained to step ${lt.step} (${lt.speed})`);
      console.log(
        `while playing: ${lt.during.length} long tasks (> 50 ms); longest ${lt.during.length ? fmt(longest(lt.during)) : 'none'}`,
      );
      console.log(
        `page load, before play: ${lt.before.length} long tasks; longest ${lt.before.length ? fmt(longest(lt.before)) : 'none'}`,
      );
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((err) => {
  console.error(`bench: ${err.message}`);
  process.exit(1);
});
