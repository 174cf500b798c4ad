// What the readouts are called and what they warn about, as pure functions of the state and
// the reports (shared by the page and the unit tests): the accuracy each task measures, the
// penalty readout under each L1 mode (and a threshold too small to zero anything), and a run
// stuck near chance.

/** What the train and validation "accuracy" readouts measure, per task. */
const ACCURACY = {
  classify: { train: 'Accuracy', val: 'Val. accuracy', title: 'share of digits classified right' },
  transfer: { train: 'Accuracy', val: 'Val. accuracy', title: 'share of digits classified right (the fine-tuned run)' },
  localize: { train: 'Class accuracy', val: 'Val. class acc.', title: "share of images whose one shape's class is right (the box is scored by IoU)" },
  detect: {
    train: 'Object-cell class acc.',
    val: 'Val. object-cell class acc.',
    title: "share of object cells (the grid cells holding a shape's centre) whose predicted class is right; boxes and objectness are scored by mAP",
  },
  segment: { train: 'Pixel accuracy', val: 'Val. pixel accuracy', title: 'share of pixels whose class (background included) is right' },
};

/** {train, val, title}: the names of the accuracy readouts for `task`. */
export function accuracyLabels(task) {
  return ACCURACY[task] ?? ACCURACY.classify;
}

/** Below this per-step soft threshold (lr·l1), proximal L1 moves a weight of 0.1 to 0 in no
 * fewer than 10 000 steps: nothing reaches 0 within a session. */
export const TINY_THRESHOLD = 1e-5;

const fmt = (v) => (v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(+v.toPrecision(3)) : v.toExponential(1));

/**
 * The penalty readout's name and tooltip under the state's L1 mode, and a note (with a
 * warning when proximal L1 cannot zero anything).
 * @returns {{label: string, title: string, note: string, warn: boolean}}
 */
export function penaltyInfo(state) {
  const { l1, l2, l1_mode: mode, lr, optimizer } = state;
  const proximal = mode === 'proximal' && l1 > 0;
  if (!proximal) {
    return {
      label: 'Penalty',
      title: 'l1·Σ|w| + l2·Σw²: added to the loss, and its gradient to the gradient',
      note: l1 > 0 || l2 > 0 ? 'Penalty mode: the L1 and L2 terms are added to the loss and to its gradient.' : '',
      warn: false,
    };
  }
  const threshold = lr * l1;
  const l2Part = l2 > 0 ? ' The L2 term is in the loss and its gradient.' : '';
  let note =
    `Proximal L1 is not in the loss or its gradient: after each update every weight it acts on moves ` +
    `lr·l1 = ${fmt(threshold)} towards 0 and stops at 0 (a soft threshold). The penalty readout shows ` +
    `l1·Σ|w|${l2 > 0 ? ' + l2·Σw²' : ''} to watch it shrink, not a term of the loss.${l2Part}`;
  let warn = false;
  if (threshold < TINY_THRESHOLD) {
    warn = true;
    note += ` The threshold ${fmt(threshold)} per step is too small to zero anything: a weight of 0.1 needs ${fmt(0.1 / threshold)} steps.`;
  }
  if (optimizer !== 'sgd') {
    warn = true;
    note += ` ${optimizer === 'adamw' ? 'AdamW' : 'Adam'} moves every weight by about lr per step whatever its gradient, more than the threshold lr·l1 (l1 < 1), so few weights stay at 0; SGD (e.g. lr 0.05, l1 5e-4) shows L1's zeros.`;
  }
  return {
    label: 'Penalty (L1 proximal)',
    title: 'l1·Σ|w| (proximal: a soft threshold after each update, not in the loss)' + (l2 > 0 ? ' + l2·Σw² (in the loss)' : ''),
    note,
    warn,
  };
}

/** After this many steps a run whose loss has not fallen, or whose class accuracy is still
 * at chance, is called stuck. */
export const STUCK_AFTER = 200;

/**
 * Is a run stuck near chance? `first` and `recent` are mean train losses (the first reports
 * of the run, the latest ones); `accuracy` the latest train accuracy; `classes` the model's.
 * Stuck after STUCK_AFTER steps when the loss has fallen by less than 3% or (for tasks
 * whose accuracy is a class accuracy: not segmentation, where background dominates) the
 * accuracy is within 1.25× of 1/classes.
 * @returns {null | {why: string, hint: string}}
 */
export function stuckAtChance({ task, step, first, recent, accuracy, classes, lr }) {
  if (!(step >= STUCK_AFTER) || !Number.isFinite(first) || !Number.isFinite(recent)) return null;
  const chance = classes > 0 ? 1 / classes : NaN;
  const flat = recent > 0.97 * first;
  const atChance = task !== 'segment' && Number.isFinite(accuracy) && accuracy <= 1.25 * chance;
  if (!flat && !atChance) return null;
  const why = [
    flat ? `the loss has not fallen (${first.toPrecision(3)} → ${recent.toPrecision(3)})` : null,
    atChance ? `training accuracy ${(accuracy * 100).toFixed(1)}% ≈ chance (1/${classes} = ${(chance * 100).toFixed(1)}%)` : null,
  ]
    .filter(Boolean)
    .join(' and ');
  return {
    why: `after ${step} steps ${why}`,
    hint: `Is the learning rate (${lr}) right? Too large a rate can kill the ReLUs or jump over the minimum, too small a one barely moves the weights: try ten times smaller or larger, then reset.`,
  };
}
