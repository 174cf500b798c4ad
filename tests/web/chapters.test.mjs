// The page's reading of the chapters (web/src/chapters.js): the live answer's template, the
// probes a chapter's instruments need, and every chapter file of chapters/ opening on the
// page without a problem (its runs are states the page accepts, its twins differ only in
// fields twins may differ in, its instruments are drawers the page has).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANSWER_FORMATS, INSTRUMENT_PROBES, chapterMap, chapterProbes, chapterProblems, fillAnswer } from '../../web/src/chapters.js';
import { CHAPTER_SLUGS, chapterState, fromHash, parseTwin, toHash, twinState } from '../../web/src/state.js';
import { loadCore } from './core.mjs';

await loadCore();
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the answer template reads labels, probe headers and evaluations, in each format', () => {
  const runs = {
    a: { label: 'L1', probes: { kernels: { zero_share: 0.6834, norm: 2.6049 }, 'inception-counts': { params_reduced: 12345.4 } }, val: { accuracy: 0.9817, mean_iou: 0.5 } },
    b: { label: 'none', probes: { kernels: { zero_share: 0 } }, val: { accuracy: 0.99 } },
  };
  const t = (s) => fillAnswer(s, runs);
  assert.equal(t('{a.label} vs {b.label}'), 'L1 vs none');
  assert.equal(t('{a.kernels.zero_share|pct}'), '68%');
  assert.equal(t('{a.kernels.zero_share|pct1}'), '68.3%');
  assert.equal(t('{a.kernels.norm|f2} {a.kernels.norm|f3}'), '2.60 2.605');
  assert.equal(t('{a.inception-counts.params_reduced|int}'), '12345');
  assert.equal(t('{a.val.accuracy|pct1} / {b.val.accuracy|pct1}'), '98.2% / 99.0%');
  assert.equal(t('{b.kernels.zero_share|pct}'), '0%');
  assert.deepEqual(ANSWER_FORMATS, ['pct', 'pct1', 'f2', 'f3', 'int']);
});

test('a value not measured yet reads "…", and so does everything of an absent run B', () => {
  const runs = { a: { label: 'A', probes: {}, val: {} }, b: null };
  assert.equal(fillAnswer('{a.kernels.zero_share|pct}, {a.val.accuracy|pct1}; {b.label} {b.val.loss|f3}', runs), '…, …; … …');
  // a header value that is not a finite number is not shown as one
  assert.equal(fillAnswer('{a.landscape.beta|f2}', { a: { probes: { landscape: { beta: null } } } }), '…');
  assert.equal(fillAnswer('{a.landscape.beta|f2}', { a: { probes: { landscape: { beta: Number.NaN } } } }), '…');
});

test("the probes a chapter's instruments need, each once, with the chapter's options", () => {
  const chapter = { slug: 'x', instruments: ['weight-histogram', 'zero-share', 'loss-terms', 'mc-dropout'], probe_options: { 'mc-dropout': { k: 20 } } };
  assert.deepEqual(chapterProbes(chapter), [
    { name: 'kernels', options: {} },
    { name: 'mc-dropout', options: { k: 20 } },
  ]);
  assert.deepEqual(chapterProblems({ slug: 'x', runs: [{}], instruments: ['weight-histogram', 'sparkles'] }), ['chapter x: unknown instrument "sparkles"']);
});

// The chapter files themselves (chapters/, from helper "chapters"): the six of this issue.
const dir = path.join(ROOT, 'chapters');
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
const list = files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));

test('the six chapters of this issue have files, named by their slugs', () => {
  const slugs = list.map((c) => c.slug).sort();
  for (const slug of ['l1-l2', 'batch-norm', 'dropout', 'network-in-network', 'deconvolution', 'up-pooling']) {
    assert.ok(slugs.includes(slug), `chapters/${slug}.json is missing`);
  }
  for (const [i, c] of list.entries()) {
    assert.equal(`${c.slug}.json`, files[i]);
    assert.ok(CHAPTER_SLUGS.includes(c.slug), c.slug);
  }
});

test('every chapter opens on the page: valid run states, a twin, known instruments and answer fields', () => {
  const chapters = chapterMap(list);
  for (const c of list) {
    assert.deepEqual(chapterProblems(c), [], c.slug);
    const { state, errors } = chapterState(c);
    assert.deepEqual(errors, [], c.slug);
    assert.ok(parseTwin(state.twin).ok, `${c.slug}: twin ${state.twin}`);
    assert.ok(twinState(state), `${c.slug}: its twins differ in something`);
    // the link of the chapter reopens it exactly
    assert.deepEqual(fromHash(toHash(state), { chapters }), { state, errors: [] }, c.slug);
    assert.deepEqual(fromHash(`#chapter=${c.slug}`, { chapters }).state, state, c.slug);
    // every {x.probe.key} of the answer names a probe its instruments run (or val / label)
    const probes = new Set(chapterProbes(c).map((p) => p.name));
    for (const [, , head, fmt] of c.answer.matchAll(/\{([ab])\.([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9_.]+)?(?:\|([a-z0-9]+))?\}/g)) {
      if (head !== 'label' && head !== 'val') assert.ok(probes.has(head), `${c.slug}: the answer reads ${head}, which no instrument of it probes`);
      if (fmt) assert.ok(ANSWER_FORMATS.includes(fmt), `${c.slug}: format ${fmt}`);
    }
    for (const inst of c.instruments) assert.ok(inst in INSTRUMENT_PROBES, `${c.slug}: ${inst}`);
  }
});
