// The Types panel: the event type catalog (GET /api/types), each type with
// its description, the tenant's count and last time, its schema and an
// example. A server without a catalog answers 404: an empty state says so.
'use strict';

/** A JSON value, folded: a summary line that opens to the whole of it. */
function folded(summary, value) {
  return el('details', {}, el('summary', {}, summary), el('pre', {}, JSON.stringify(value, null, 2)));
}

function typeCard(t) {
  const examples = Array.isArray(t.examples) ? t.examples : [];
  const last = t.lastAt ? `last ${formatTime(t.lastAt, true)}` : 'none stored yet';
  return el('article', { class: 'type card', 'data-test': 'type', 'data-type': t.type },
    el('header', {},
      el('h3', {}, el('code', {}, t.type)),
      el('span', { class: 'badge', title: 'Stored events of this tenant' }, `${Number(t.count || 0).toLocaleString('en')} events`),
      el('span', { class: 'muted', title: t.lastAt || '' }, last)),
    t.description ? el('p', {}, t.description) : el('p', { class: 'muted' }, 'No description.'),
    t.schema ? folded('Schema', t.schema) : el('p', { class: 'muted' }, 'No schema: any JSON object is accepted.'),
    examples.length ? folded(examples.length === 1 ? 'Example' : `Examples (${examples.length})`, examples.length === 1 ? examples[0] : examples) : null);
}

async function loadTypes() {
  const box = $('types-list');
  try {
    const catalog = await api('/api/types');
    const types = catalog.types || [];
    box.replaceChildren(...types.map(typeCard));
    if (!types.length) box.append(el('p', { class: 'empty muted' }, 'The catalog is empty: no schema is loaded and no event is stored.'));
    const closed = catalog.closed ? 'closed: types without a schema are refused' : 'open: types without a schema are accepted';
    $('types-status').textContent = `${types.length} type${types.length === 1 ? '' : 's'} · ${closed} · ${updatedAt()}`;
    showError('types-error', null);
  } catch (error) {
    if (error.status !== 404) return showError('types-error', error);
    box.replaceChildren(el('p', { class: 'empty muted' }, 'This server has no event type catalog (GET /api/types answered 404). A server with schemas (EVENTFEED_SCHEMAS) lists them here.'));
    $('types-status').textContent = '';
    showError('types-error', null);
  }
}

panels.types = {
  show: loadTypes,
  stop() {
    $('types-list').replaceChildren();
    $('types-status').textContent = '';
  },
};
