// The chapters of the course as the page reads them (docs/chapters.md): the list in
// web/chapters/index.json (scripts/build.sh writes it from chapters/*.json), which probe
// each page instrument needs, and the live answer: the chapter's template filled from the
// latest probe headers and evaluations of runs A and B. Pure functions, shared by the page
// and the unit tests.

/** Page instrument -> the Playground.instrument probe it draws (null: reports / evaluations). */
export const INSTRUMENT_PROBES = Object.freeze({
  'weight-histogram': 'kernels',
  'zero-share': 'kernels',
  'filter-norms': 'kernels',
  'first-kernels': 'kernels',
  'loss-terms': null,
  landscape: 'landscape',
  'activation-percentiles': 'activations',
  'lr-sweep': null,
  'dropout-mask': 'dropout-mask',
  'train-vs-val': null,
  'test-time': 'test-time',
  'mc-dropout': 'mc-dropout',
  'inception-diagram': 'inception-counts',
  'branch-maps': 'branch-maps',
  'class-maps': 'class-maps',
  checkerboard: 'checkerboard',
  'overlap-toy': 'overlap',
  switches: 'switches',
  'decoder-stages': 'decoder-stages',
  'val-metrics': null,
});

/** The probes a chapter's instruments need, each once: [{name, options}]. Options come from
 * the chapter's `probe_options` ({probe: {...}}) when it has them. */
export function chapterProbes(chapter) {
  const names = [];
  for (const inst of chapter.instruments ?? []) {
    const probe = INSTRUMENT_PROBES[inst];
    if (probe && !names.includes(probe)) names.push(probe);
  }
  return names.map((name) => ({ name, options: chapter.probe_options?.[name] ?? {} }));
}

/** Problems of a chapter object that the page cannot show (unknown instruments, no runs). */
export function chapterProblems(chapter) {
  const problems = [];
  if (typeof chapter?.slug !== 'string') return ['a chapter without a slug'];
  for (const inst of chapter.instruments ?? []) {
    if (!(inst in INSTRUMENT_PROBES)) problems.push(`chapter ${chapter.slug}: unknown instrument "${inst}"`);
  }
  if (!Array.isArray(chapter.runs) || chapter.runs.length === 0) problems.push(`chapter ${chapter.slug}: no runs`);
  return problems;
}

/** Reads index.json's array into slug -> chapter (the page's and fromHash's form). */
export function chapterMap(list) {
  return Object.fromEntries((Array.isArray(list) ? list : []).map((c) => [c.slug, c]));
}

const FORMATS = {
  pct: (v) => `${Math.round(v * 100)}%`,
  pct1: (v) => `${(v * 100).toFixed(1)}%`,
  f2: (v) => v.toFixed(2),
  f3: (v) => v.toFixed(3),
  int: (v) => String(Math.round(v)),
};
export const ANSWER_FORMATS = Object.freeze(Object.keys(FORMATS));

/** A value by dotted path, or undefined. */
function lookup(root, path) {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !(key in v)) return undefined;
    v = v[key];
  }
  return v;
}

/**
 * Fills an answer template: `{a.label}`, `{b.label}`, `{a.<probe>.<key>|<fmt>}` (a scalar of
 * run A's latest header of that probe), `{a.val.<metric>|<fmt>}` (its latest evaluation:
 * accuracy, loss or a task metric). A value not measured yet reads "…". `runs`:
 * {a: {label, probes: {probe: header}, val: {accuracy, loss, ...}}, b: ... | null}.
 */
export function fillAnswer(template, runs) {
  return String(template ?? '').replace(/\{([ab])\.([A-Za-z0-9_.-]+)(?:\|([a-z0-9]+))?\}/g, (all, side, path, fmt) => {
    const run = runs[side];
    if (!run) return '…';
    if (path === 'label') return String(run.label ?? side.toUpperCase());
    const [head, ...rest] = path.split('.');
    const v = head === 'val' ? lookup(run.val, rest) : lookup(run.probes?.[head], rest);
    if (typeof v !== 'number' || !Number.isFinite(v)) return '…';
    const f = FORMATS[fmt];
    return f ? f(v) : String(+v.toPrecision(4));
  });
}
