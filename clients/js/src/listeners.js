// What an EventFeed tells the app besides events: its status, resets, the
// errors it recovers from, and (with `debug`) each step. Handlers are called
// guarded: one that throws must not stop the others, nor the feed.

import { asFeedError } from './http.js';

export class Listeners {
  /** @param {boolean} debug log each step with `console.debug` */
  constructor(debug) {
    /** @type {import('../index.js').Status} */
    this.status = 'connecting';
    this._debug = debug;
    this._statusHandlers = new Set();
    this._resetHandlers = new Set();
    this._errorHandlers = new Set();
  }

  /** `handler({ status, reason?, error? })` at every change of `feed.status`. */
  onStatus(handler) {
    return this._add(this._statusHandlers, handler);
  }

  onReset(handler) {
    return this._add(this._resetHandlers, handler);
  }

  /** `handler(error)` for every FeedError the feed recovers from by itself. */
  onError(handler) {
    return this._add(this._errorHandlers, handler);
  }

  /** Whether the feed stopped for good: closed, or its token refused. */
  _stopped() {
    return this.status === 'closed' || this.status === 'unauthorized';
  }

  _setStatus(status, reason, error) {
    if (this.status === status || this.status === 'closed') return;
    if (this.status === 'unauthorized' && status !== 'closed') return;
    this.status = status;
    this._log('status', status, reason ?? '');
    const info = { status };
    if (reason !== undefined) info.reason = reason;
    if (error !== undefined) info.error = error;
    for (const h of [...this._statusHandlers]) h(info);
  }

  _error(err, context) {
    const error = asFeedError(err, 'internal');
    this._log(context, error);
    for (const h of [...this._errorHandlers]) h(error);
  }

  _log(...args) {
    if (this._debug) console.debug('eventfeed:', ...args);
  }

  /** Calls a handler, reporting what it throws instead of rethrowing it. */
  _call(handler, ...args) {
    try {
      handler(...args);
    } catch (err) {
      if (typeof reportError === 'function') reportError(err);
      else console.error('eventfeed: a handler threw', err);
    }
  }

  /** Adds a guarded `handler` to `set`; returns its remover. */
  _add(set, handler) {
    const entry = (...args) => this._call(handler, ...args);
    set.add(entry);
    return () => set.delete(entry);
  }
}
