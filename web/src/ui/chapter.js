// A chapter on the page: the picker (in the header; "none" is the plain dashboard), and
// the chapter panel at the top of the dashboard: the question first, the live answer, the
// explainer and what runs A and B are, then the instruments. The chapter's controls come
// first in the controls panel; every other control is folded into "All settings" (still
// reachable). The whole dashboard stays below.

import { CHAPTER_SLUGS } from '../state.js';

const el = (tag, className, text) => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
};

export class ChapterView {
  /**
   * @param {{chapters: object[], onPick: (slug: string) => void}} options  chapters: index.json's list
   */
  constructor({ chapters, onPick }) {
    // the picker
    const label = el('label', 'chapter-pick');
    label.append(el('span', null, 'Chapter'));
    this.select = el('select');
    this.select.dataset.testid = 'chapter';
    this.select.add(new Option('none — the plain dashboard', ''));
    // in the course's order (CHAPTERS.md)
    const order = (c) => (CHAPTER_SLUGS.includes(c.slug) ? CHAPTER_SLUGS.indexOf(c.slug) : CHAPTER_SLUGS.length);
    for (const c of [...chapters].sort((p, q) => order(p) - order(q))) this.select.add(new Option(c.title ?? c.slug, c.slug));
    label.append(this.select);
    document.querySelector('header.top > div').append(label);
    this.select.addEventListener('change', () => onPick(this.select.value));

    // the panel
    const main = document.querySelector('main.layout');
    this.root = el('section', 'panel chapter-panel');
    this.root.setAttribute('aria-label', 'Chapter');
    this.root.dataset.testid = 'chapter-panel';
    this.root.hidden = true;
    this.title = el('h2', 'chapter-title');
    this.question = el('p', 'chapter-question');
    this.question.dataset.testid = 'chapter-question';
    this.answer = el('p', 'chapter-answer', '…');
    this.answer.dataset.testid = 'chapter-answer';
    this.answer.setAttribute('aria-live', 'polite');
    this.explainer = el('p', 'chapter-explainer');
    this.explainer.dataset.testid = 'chapter-explainer';
    this.runs = el('p', 'caption chapter-runs');
    this.runs.dataset.testid = 'chapter-runs';
    this.finding = el('p', 'caption chapter-finding');
    this.instruments = el('div', 'instrument-grid');
    this.instruments.dataset.testid = 'instruments';
    this.root.append(this.title, this.question, this.answer, this.explainer, this.runs, this.finding, this.instruments);
    main.prepend(this.root);

    // the controls: the chapter's first, the rest folded
    this.aside = document.querySelector('aside.controls');
    this.box = el('div', 'chapter-controls');
    this.box.dataset.testid = 'chapter-controls';
    this.more = el('details', 'more-controls');
    this.more.dataset.testid = 'more-controls';
    this.more.append(el('summary', null, 'All settings'));
    this.moved = []; // [node, placeholder comment]
    this.folded = []; // the aside's children moved into `more`, in order
  }

  /** Shows a chapter (or none); returns the container for its instruments. */
  show(chapter, { labels }) {
    this.select.value = chapter?.slug ?? '';
    this.unfold();
    this.root.hidden = !chapter;
    document.body.dataset.chapter = chapter?.slug ?? '';
    if (!chapter) {
      this.instruments.replaceChildren();
      return null;
    }
    this.title.textContent = chapter.title ?? chapter.slug;
    this.question.textContent = chapter.question ?? '';
    this.explainer.textContent = chapter.explainer ?? '';
    this.setLabels(labels);
    this.finding.textContent = chapter.finding?.claim
      ? `The finding this reproduces: ${chapter.finding.claim}${chapter.finding.source ? ` (${chapter.finding.source})` : ''}`
      : '';
    this.answer.textContent = '…';
    this.fold(chapter.controls ?? []);
    return this.instruments;
  }

  setLabels(labels) {
    this.runs.textContent = `Run A: ${labels.a}. Run B: ${labels.b ?? 'off'}. Same seed, same batches; B is drawn dashed.`;
  }

  setAnswer(text) {
    if (this.answer.textContent !== text) this.answer.textContent = text;
  }

  /** Moves the listed fields' controls into the chapter box; folds the rest into "All settings". */
  fold(fields) {
    const transport = this.aside.querySelector('.transport');
    transport.after(this.box);
    const title = el('h3', 'group', 'This chapter’s settings');
    this.box.replaceChildren(title);
    for (const name of fields) {
      const input = this.aside.querySelector(`[data-field="${name}"]`);
      if (!input) continue;
      const nodes = [input.closest('label') ?? input];
      const slider = this.aside.querySelector(`[data-slider="${name}"]`);
      if (slider) nodes.push(slider);
      for (const node of nodes) {
        const placeholder = document.createComment(`chapter:${name}`);
        node.before(placeholder);
        this.moved.push([node, placeholder]);
        this.box.append(node);
      }
    }
    this.more.open = false;
    this.box.after(this.more);
    for (const child of [...this.aside.children]) {
      if (child === transport || child === this.box || child === this.more || child.dataset.keep === 'true') continue;
      this.folded.push(child);
      this.more.append(child);
    }
  }

  unfold() {
    for (const child of this.folded) this.more.before(child);
    this.folded = [];
    for (const [node, placeholder] of this.moved.reverse()) {
      placeholder.replaceWith(node);
    }
    this.moved = [];
    this.more.remove();
    this.box.remove();
  }
}
