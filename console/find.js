// The Find panel: one event by its id or its cursor, with its full envelope.
// Both are audit reads (auditor or admin): an id is a filter of its own; a
// cursor is the event after the one just before it, newest first.
'use strict';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The tenant's event with this cursor, or null. */
async function eventAtCursor(cursor) {
  const before = await api(`/api/audit?${new URLSearchParams({ order: 'desc', after: cursor, limit: '1' })}`);
  const after = before.events.length ? before.events[0].cursor : '0';
  const page = await api(`/api/audit?${new URLSearchParams({ after, limit: '1' })}`);
  return page.events.find((e) => e.cursor === cursor) || null;
}

async function eventWithId(id) {
  const page = await api(`/api/audit?${new URLSearchParams({ id, limit: '1' })}`);
  return page.events[0] || null;
}

function showFound(event, wanted) {
  const box = $('find-result');
  if (!event) {
    box.replaceChildren(el('p', { class: 'muted' }, `No event of this tenant has the ${UUID.test(wanted) ? 'id' : 'cursor'} ${wanted}.`));
    return;
  }
  const table = el('table', { class: 'events' },
    el('caption', { class: 'sr-only' }, 'The event found'),
    el('thead', {}, el('tr', {}, ...['Time', 'Type', 'Stream', 'Version', 'Actor', 'Data', 'Cursor'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, eventRow(event, ['time', 'type', 'stream', 'version', 'actor', 'data', 'cursor'], true)));
  box.replaceChildren(el('div', { class: 'table-wrap' }, table), el('h2', {}, 'Envelope'), el('pre', { class: 'envelope' }, JSON.stringify(event, null, 2)));
}

async function find() {
  const wanted = $('find-input').value.trim();
  showError('find-error', null);
  if (!wanted) return;
  if (!can('auditor')) return showError('find-error', new Error('Finding events needs the auditor or admin role.'));
  try {
    showFound(UUID.test(wanted) ? await eventWithId(wanted) : await eventAtCursor(wanted), wanted);
  } catch (error) {
    showError('find-error', error);
  }
}

panels.find = {
  /** Opens the panel on an event (from a cursor in another panel). */
  open(cursor) {
    $('find-input').value = cursor;
    select('find');
    find();
  },
  stop() {
    $('find-result').replaceChildren();
    $('find-input').value = '';
  },
};

document.addEventListener('DOMContentLoaded', () => {
  $('find-form').addEventListener('submit', (event) => {
    event.preventDefault();
    find();
  });
});
