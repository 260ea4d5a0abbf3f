// Run in a page of the built site (selenium's execute_script): what a reader cannot
// read. Returns {clipped: [...], faint: [...]}, one line per defect.
//
// clipped: an element of the page's <main> whose content is wider than its box, unless
//   the reader can scroll it (overflow-x auto/scroll, scroll bar not hidden) or the
//   overflow spills visibly without leaving the page or being cut off by a box.
// faint: body text, captions and table cells whose colour has a contrast ratio below
//   4.5:1 against the background behind them (WCAG 2.1, level AA).
const root = document.querySelector('main') || document.body;
const TOL = 6;  // px: italic glyphs of inline maths overhang their box by a few pixels
const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
  (typeof el.className === 'string' && el.className.trim()
    ? '.' + el.className.trim().split(/\s+/).slice(0, 3).join('.') : '');
const text = el => (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 70);
const shown = el => el.getClientRects().length > 0 &&
  getComputedStyle(el).visibility !== 'hidden';
// A box the reader can scroll sideways: overflow-x auto or scroll, with its scroll bar
// not hidden by CSS (the book's CSS draws it always, not only while scrolling).
const scrolls = el => {
  const cs = getComputedStyle(el);
  return (cs.overflowX === 'auto' || cs.overflowX === 'scroll') &&
    cs.scrollbarWidth !== 'none';
};
const pageWidth = document.documentElement.clientWidth;

const clipped = [];
for (const el of root.querySelectorAll('*')) {
  if (el.closest('mjx-assistive-mml')) continue;  // the screen readers' copy, never shown
  const cs = getComputedStyle(el);
  if (cs.display === 'inline' || !shown(el) || el.clientWidth === 0) continue;
  const over = el.scrollWidth - el.clientWidth;
  if (over <= TOL || scrolls(el)) continue;
  let why = null;
  if (cs.overflowX !== 'visible') {
    why = `cut off, no scroll bar (overflow-x: ${cs.overflowX})`;
  } else {  // it spills: is the spill cut off by a box around it, or by the page edge?
    const right = el.getBoundingClientRect().left + el.clientLeft + el.scrollWidth;
    let box = el.parentElement;
    while (box && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
    if (!box || box === document.body || box === document.documentElement) {
      if (right > pageWidth + TOL) why = 'runs off the page';
    } else if (!scrolls(box) && right > box.getBoundingClientRect().right + TOL) {
      why = `cut off by ${name(box)}`;
    }
  }
  if (why) clipped.push(`${name(el)} is ${over} px too wide, ${why}: "${text(el)}"`);
}

const rgba = s => { const v = s.match(/[\d.]+/g).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
const over_ = (top, under) => [0, 1, 2].map(k => top[k] * top[3] + under[k] * (1 - top[3]));
const background = el => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let colour = [255, 255, 255];  // the canvas behind an all-transparent page
  for (const layer of layers.reverse()) colour = over_(layer, colour);
  return colour;
};
const luminance = c => {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const faint = [];
const prose = 'p, li, dd, dt, td, th, caption, figcaption, figcaption *, a, em, strong';
for (const el of root.querySelectorAll(prose)) {
  if (!shown(el) || el.closest('.highlight, .cell_output pre, mjx-container')) continue;
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const bg = background(el), fg = over_(rgba(getComputedStyle(el).color), bg);
  const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  if (ratio < 4.5) {
    faint.push(`${name(el)} has contrast ${ratio.toFixed(2)}:1 ` +
      `(rgb ${fg.map(Math.round)} on ${bg.map(Math.round)}): "${text(el)}"`);
  }
}
return {clipped, faint};
