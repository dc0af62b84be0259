// The feed over plain HTTP, for when the socket cannot connect: Server-Sent
// Events (`GET /api/events/stream`) or long-polling (`GET /api/events?wait=`),
// both from the client's cursor, so the switch loses and repeats nothing.
//
// SSE is read with `fetch` rather than `EventSource`: an EventSource only
// reports event names it was told in advance, cannot send the token in a
// header, and gives up for good on a 401 after the token expires.

import { asFeedError, backoff, errorOf, request, sleep } from './http.js';

const PAGE = 500;

export class HttpFeed {
  /**
   * @param {object} host the EventFeed: url, options, tokens, cursor,
   *   consumer, types, `_fromFallback(event)` / `_reset(payload)` to hand
   *   results back, `_error` and `_fatal` for what goes wrong
   * @param {'sse'|'poll'} kind
   */
  constructor(host, kind) {
    this.host = host;
    this.kind = kind;
    this.abort = new AbortController();
  }

  start() {
    this._run(this.abort.signal);
  }

  stop() {
    this.abort.abort();
  }

  async _run(signal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await (this.kind === 'sse' ? this._sse(signal) : this._poll(signal));
        failures = 0;
      } catch (caught) {
        if (signal.aborted) return;
        const err = asFeedError(caught, 'network');
        // A token the server refuses as invalid will not become valid.
        if (err.code === 'unauthorized' && /^authentication failed: /.test(err.message) && !expired(err)) {
          this.host._fatal(err);
          return;
        }
        failures += 1;
        this.host._error(err, `the ${this.kind} fallback failed`);
        // An expired token is replaced before the next try; anything else waits.
        if (expired(err)) await this.host._tokens.fresh().catch(() => {});
        const { reconnectionDelay, reconnectionDelayMax } = this.host._opts;
        await sleep(backoff(failures, reconnectionDelay, reconnectionDelayMax), signal);
      }
    }
  }

  _query(extra) {
    const q = new URLSearchParams(extra);
    const { cursor, consumer, types } = this.host;
    if (cursor) q.set('after', cursor);
    else if (consumer && this.kind === 'poll') q.set('consumer', consumer);
    if (types) q.set('types', types.join(','));
    return q.toString();
  }

  /** One long-poll; the loop calls it again at once. */
  async _poll(signal) {
    const token = await this.host._tokens.valid();
    const path = `/api/events?${this._query({ wait: this.host._opts.pollWait, limit: PAGE })}`;
    const page = await request(this.host.url, path, { token, signal, init: this.host._opts.fetchInit });
    if (signal.aborted) return;
    if (page.reset) this.host._reset(page.reset);
    for (const event of page.events) {
      if (signal.aborted) return;
      this.host._fromFallback(event);
    }
  }

  /** One SSE response, read until it ends (at the token's expiry, say). */
  async _sse(signal) {
    const token = await this.host._tokens.valid();
    const { headers, credentials } = this.host._opts.fetchInit;
    const res = await fetch(`${this.host.url}/api/events/stream?${this._query({})}`, {
      headers: { ...headers, authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      credentials,
      signal,
    });
    if (!res.ok) throw await errorOf(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      buffer += value;
      let end;
      while ((end = /\r?\n\r?\n/.exec(buffer))) {
        const block = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        if (this._dispatch(parseBlock(block), signal) === 'expired') {
          await reader.cancel().catch(() => {});
          await this.host._tokens.fresh();
          return;
        }
      }
    }
  }

  _dispatch({ event, data }, signal) {
    if (signal.aborted || data === '') return;
    if (event === 'auth:expired') return 'expired';
    const payload = JSON.parse(data);
    if (event === 'feed:reset') this.host._reset(payload);
    else this.host._fromFallback(payload);
  }
}

/** Whether the server refused the token only for its age (or an `nbf` ahead of the clock). */
function expired(err) {
  return err.code === 'unauthorized' && /expired|not valid yet/.test(err.message);
}

/** The `event` and `data` fields of one SSE message (comments dropped). */
function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}
