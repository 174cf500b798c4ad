// One training step of the standard small net, timed in this browser: ConvNetJS (loaded
// as a classic script, global `convnetjs`) against our wasm Playground. Results go to the
// table and to window.benchResults; window.benchDone is set when finished (window.benchError
// on failure) so scripts/bench-browser.mjs can read them.

const BATCH = 64;
const LR = 0.01;
const MOMENTUM = 0.9;
const SIDE = 28;
const PIXELS = SIDE * SIDE;

const params = new URLSearchParams(location.search);
function stepsParam(name, fallback) {
  const raw = params.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new Error(`?${name}= must be a whole number 0..1000, got "${raw}"`);
  return n;
}

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const status = (text) => {
  $('bench-status').textContent = text;
};

function showError(message) {
  const box = $('error');
  const li = document.createElement('li');
  li.textContent = message;
  box.querySelector('.error-list').append(li);
  box.hidden = false;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

function addRow(result) {
  const tr = document.createElement('tr');
  const cells = [
    result.engine,
    result.backend,
    String(result.steps),
    result.median_ms.toFixed(1),
    result.mean_ms.toFixed(1),
    ((BATCH * 1000) / result.median_ms).toFixed(0),
  ];
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c;
    tr.append(td);
  }
  $('bench-rows').append(tr);
}

async function loadMnist() {
  const response = await fetch('assets/mnist.bin');
  if (!response.ok) throw new Error(`assets/mnist.bin: HTTP ${response.status} (run \`npm run build\`)`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== 'MNST') throw new Error('assets/mnist.bin is not an MNIST asset');
  const count = new DataView(bytes.buffer).getUint32(4, true);
  return { bytes, count, labels: bytes.subarray(16, 16 + count), pixels: bytes.subarray(16 + count) };
}

/** Times `steps` calls of `one()` after `warmup` untimed ones. */
async function time(one, steps, warmup) {
  for (let i = 0; i < warmup; i++) await one();
  const ms = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await one();
    ms.push(performance.now() - t0);
  }
  return { steps, median_ms: median(ms), mean_ms: mean(ms), all_ms: ms };
}

async function benchConvnetjs(mnist, steps) {
  const cj = globalThis.convnetjs;
  if (!cj) throw new Error('ConvNetJS did not load (vendor/convnet.js; run `npm run build`)');
  const net = new cj.Net();
  net.makeLayers([
    { type: 'input', out_sx: SIDE, out_sy: SIDE, out_depth: 1 },
    { type: 'conv', sx: 5, filters: 8, stride: 1, pad: 2, activation: 'relu' },
    { type: 'pool', sx: 2, stride: 2 },
    { type: 'conv', sx: 5, filters: 16, stride: 1, pad: 2, activation: 'relu' },
    { type: 'pool', sx: 2, stride: 2 },
    { type: 'softmax', num_classes: 10 },
  ]);
  // ConvNetJS updates the weights every batch_size calls of train(): one step = 64 calls.
  const trainer = new cj.Trainer(net, { method: 'sgd', learning_rate: LR, momentum: MOMENTUM, batch_size: BATCH, l2_decay: 0 });
  // Inputs are converted once, outside the timing: only the net's work is measured.
  const pool = [];
  for (let i = 0; i < 4 * BATCH; i++) {
    const idx = (i * 7919) % mnist.count;
    const vol = new cj.Vol(SIDE, SIDE, 1, 0.0);
    for (let p = 0; p < PIXELS; p++) vol.w[p] = mnist.pixels[idx * PIXELS + p] / 255;
    pool.push({ vol, label: mnist.labels[idx] });
  }
  let cursor = 0;
  let lastLoss = NaN;
  const one = () => {
    for (let i = 0; i < BATCH; i++) {
      const { vol, label } = pool[cursor++ % pool.length];
      lastLoss = trainer.train(vol, label).loss;
    }
  };
  const r = await time(one, steps, 1);
  return { engine: 'ConvNetJS 0.3', backend: 'js', loss: lastLoss, ...r };
}

async function benchOurs(wasm, spec, mnist, backend, steps, warmup) {
  const config = { backend, batch: BATCH, lr: LR, optimizer: 'sgd', momentum: MOMENTUM, seed: 1 };
  const pg = await wasm.Playground.create(spec, JSON.stringify(config), mnist.bytes);
  try {
    const info = JSON.parse(pg.backend());
    let last = null;
    const one = async () => {
      last = JSON.parse(await pg.step(1));
    };
    const r = await time(one, steps, warmup);
    return {
      engine: 'cnn-playground (wasm)',
      backend: info.backend,
      reason: info.reason,
      loss: last?.loss,
      reported_ms_per_step: last?.ms_per_step,
      ...r,
    };
  } finally {
    pg.free();
  }
}

async function main() {
  const convnetSteps = stepsParam('convnetjs', 5);
  const cpuSteps = stepsParam('cpu', 20);
  const gpuSteps = stepsParam('webgpu', 3);
  status('loading the wasm core, the digits and the preset…');
  const wasm = await import('../pkg/cnn_playground.js');
  await wasm.default();
  const mnist = await loadMnist();
  const specResponse = await fetch('presets/mnist-small.json');
  if (!specResponse.ok) throw new Error(`presets/mnist-small.json: HTTP ${specResponse.status}`);
  const spec = await specResponse.text();

  const results = [];
  const run = async (label, steps, fn) => {
    if (steps === 0) return;
    status(`timing ${label} (${steps} steps)…`);
    await new Promise((r) => setTimeout(r, 0)); // let the status paint
    const r = await fn();
    results.push(r);
    addRow(r);
  };
  await run('cnn-playground on the CPU', cpuSteps, () => benchOurs(wasm, spec, mnist, 'cpu', cpuSteps, 3));
  await run('ConvNetJS', convnetSteps, () => benchConvnetjs(mnist, convnetSteps));
  if (gpuSteps > 0) {
    try {
      await run('cnn-playground on WebGPU', gpuSteps, () => benchOurs(wasm, spec, mnist, 'webgpu', gpuSteps, 1));
    } catch (err) {
      showError(`WebGPU run skipped: ${err.message}`);
    }
  }

  const cnj = results.find((r) => r.engine.startsWith('ConvNetJS'));
  const cpu = results.find((r) => r.backend === 'cpu');
  const summary = { results, speedup_cpu_vs_convnetjs: cnj && cpu ? cnj.median_ms / cpu.median_ms : null };
  status(
    summary.speedup_cpu_vs_convnetjs
      ? `done: the wasm CPU step is ${summary.speedup_cpu_vs_convnetjs.toFixed(1)}× faster than ConvNetJS's`
      : 'done',
  );
  window.benchResults = summary;
  window.benchDone = true;
}

main().catch((err) => {
  const message = err instanceof Error ? err.message : String(err);
  showError(`benchmark failed: ${message}`);
  status('failed');
  window.benchError = message;
  window.benchDone = true;
});
