// Backend selection as the reader sees it: `auto` under SwiftShader picks the CPU and says
// why; with WebGPU unavailable the page trains on the CPU and says so. Two real ways to
// have no WebGPU in Chromium:
//   - no adapter: Chromium launched without --enable-unsafe-webgpu (headless, no GPU):
//     navigator.gpu exists but requestAdapter() resolves to null;
//   - no API: an insecure context (http on a non-localhost name, mapped to 127.0.0.1 with
//     --host-resolver-rules): WebGPU is [SecureContext], so navigator.gpu is undefined,
//     in the page and in its worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, waitReady, waitForStep, text, screenshot } from './helpers.mjs';

async function badge(page) {
  return {
    backend: await page.locator('[data-testid="backend"]').getAttribute('data-backend'),
    text: await text(page, 'backend'),
  };
}

async function trainsOnCpu(page, label) {
  await waitReady(page, 60_000);
  const b = await badge(page);
  assert.equal(b.backend, 'cpu', `${label}: expected the CPU backend, badge says "${b.text}"`);
  await page.click('[data-testid="play"]');
  await waitForStep(page, 20, 60_000);
  await page.click('[data-testid="pause"]');
  assert.deepEqual(page.pageErrors, [], `${label}: uncaught errors`);
  return b;
}

test('auto under SwiftShader runs on the CPU and says why', { timeout: 180_000 }, async () => {
  const env = await launch();
  try {
    const page = await openPage(env.browser, `${env.server.url}#backend=auto`);
    // The adapter really is there: this is the software one.
    const adapter = await page.evaluate(async () => {
      const a = await navigator.gpu?.requestAdapter();
      return a ? { fallback: a.info.isFallbackAdapter, arch: a.info.architecture } : null;
    });
    assert.ok(adapter, 'SwiftShader should give a WebGPU adapter in this launch');
    const b = await trainsOnCpu(page, 'auto');
    assert.match(b.text, /software|fallback|swiftshader/i, `the reason should say the adapter is a software fallback: "${b.text}"`);
    assert.equal(await page.locator('[data-testid="error"]').isVisible(), false, await text(page, 'error'));
    await screenshot(page, 'backend-auto-swiftshader');
  } finally {
    await env.close();
  }
});

test('no WebGPU adapter: auto and webgpu both train on the CPU and say so', { timeout: 240_000 }, async () => {
  const env = await launch({ webgpu: false });
  try {
    for (const choice of ['auto', 'webgpu']) {
      const page = await openPage(env.browser, `${env.server.url}#backend=${choice}`);
      const probe = await page.evaluate(async () => ({
        api: Boolean(navigator.gpu),
        adapter: navigator.gpu ? Boolean(await navigator.gpu.requestAdapter()) : false,
      }));
      assert.deepEqual(probe, { api: true, adapter: false }, 'this launch should expose the API but no adapter');
      const b = await trainsOnCpu(page, `no adapter, ${choice}`);
      assert.match(b.text, /adapter|webgpu/i, `the reason should say WebGPU is unavailable: "${b.text}"`);
      await screenshot(page, `backend-no-adapter-${choice}`);
      await page.close();
    }
  } finally {
    await env.close();
  }
});

test('no navigator.gpu at all (insecure context): trains on the CPU and says so', { timeout: 240_000 }, async () => {
  const env = await launch({ args: ['--host-resolver-rules=MAP playground.test 127.0.0.1'] });
  try {
    const url = env.server.url.replace('localhost', 'playground.test');
    for (const choice of ['auto', 'webgpu']) {
      const page = await openPage(env.browser, `${url}#backend=${choice}`);
      const probe = await page.evaluate(async () => ({ secure: isSecureContext, api: 'gpu' in navigator }));
      assert.deepEqual(probe, { secure: false, api: false }, 'this page should have no WebGPU API');
      const b = await trainsOnCpu(page, `no navigator.gpu, ${choice}`);
      assert.match(b.text, /webgpu|gpu/i, `the reason should say WebGPU is unavailable: "${b.text}"`);
      await screenshot(page, `backend-no-api-${choice}`);
      await page.close();
    }
  } finally {
    await env.close();
  }
});
