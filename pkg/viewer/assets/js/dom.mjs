// Building the page with DOM calls only. Everything from the link, the
// server or the record is inserted as text (text nodes, attribute values
// the code chooses), never parsed as HTML.

const SVGNS = 'http://www.w3.org/2000/svg';

// h builds an element. attrs values are set with setAttribute (never an
// event handler: callers pass only fixed attribute names); children are
// nodes or strings, and strings become text nodes.
export function h(tag, attrs, ...kids) {
  return build(document.createElement(tag), attrs, kids);
}

export function svg(tag, attrs, ...kids) {
  return build(document.createElementNS(SVGNS, tag), attrs, kids);
}

function build(e, attrs, kids) {
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false || k === '') continue;
    e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

// table renders rows of cells; on narrow screens CSS turns each row into
// a card and labels each cell with its column name (data-label). columns
// are {label, cls}: cls "date" and "status" cells never wrap inside a
// word.
export function table(cls, columns, rows) {
  const cols = columns.map((c) => (typeof c === 'string' ? { label: c } : c));
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data ' + cls },
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', class: c.cls || null }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', { class: r.cls || null, 'data-row': r.id || null },
        r.cells.map((cell, i) => h('td', { 'data-label': cols[i].label, class: cols[i].cls || null }, cell)))))));
}

export function badge(text, cls) {
  return text ? h('span', { class: 'badge ' + (cls || '') }, text) : null;
}

export function small(text) {
  return text ? h('div', { class: 'sub' }, text) : null;
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}
