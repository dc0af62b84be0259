// The token: a string, or a function returning one (or a promise of one).
// The library reads `exp`, `sub` and the tenant claim from it without
// verifying it: only the server can verify, and these claims only tell the
// client when to refresh and under which key to keep its cursor.

import { FeedError, backoff, sleep } from './http.js';

/** The claims of a JWT, or `{}` when it does not decode. */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

export class TokenSource {
  constructor(option) {
    if (typeof option !== 'string' && typeof option !== 'function') {
      throw new FeedError({ code: 'invalid', message: 'EventFeed: options.token must be a string or a function' });
    }
    this._option = option;
    this.current = typeof option === 'string' ? option : null;
    // A token fetched but not yet used by a connect serves the next one, so
    // the first connect does not call the function twice.
    this._unused = false;
  }

  /** Whether a newer token can be had at all. */
  get refreshable() {
    return typeof this._option === 'function';
  }

  /** The current token's `exp` in milliseconds, or Infinity. */
  get expiresAt() {
    const exp = this.current ? claims(this.current).exp : undefined;
    return typeof exp === 'number' ? exp * 1000 : Infinity;
  }

  /**
   * Calls the token function (a string option is returned as it is). A
   * function that throws, rejects or gives no token rejects with a
   * FeedError `unauthorized` whose `cause` is what it threw.
   */
  async fresh() {
    if (this.refreshable) {
      let token;
      try {
        token = await this._option();
      } catch (err) {
        throw new FeedError({ code: 'unauthorized', message: `the token function failed: ${err?.message ?? err}` }, err);
      }
      if (typeof token !== 'string' || !token) {
        throw new FeedError({ code: 'unauthorized', message: 'the token function gave no token' });
      }
      this.current = token;
      this._unused = true;
    }
    return this.current;
  }


  /** A token for a socket connect: the function is called for every one. */
  async forConnect() {
    if (this._unused && this.expiresAt > Date.now()) {
      this._unused = false;
      return this.current;
    }
    const token = await this.fresh();
    this._unused = false;
    return token;
  }

  /** A token for an HTTP request: the current one unless it is about to expire. */
  async valid(marginMs = 5000) {
    if (this.current && this.expiresAt - Date.now() > marginMs) return this.current;
    return this.fresh();
  }

  /**
   * Milliseconds until the token should be replaced: a quarter of its
   * remaining life before `exp`, at least half a second and at most 30 s
   * early, so short-lived tokens still leave time for the round trip.
   */
  refreshDelay() {
    const left = this.expiresAt - Date.now();
    if (!this.refreshable || left === Infinity) return Infinity;
    const early = Math.min(30_000, Math.max(500, left / 4));
    return Math.max(0, left - early);
  }
}

/**
 * Calls `get` until it resolves, waiting longer after each failure (each
 * reported to `report`); resolves to null once `stopped()` holds.
 */
export async function keepTrying(get, { report, stopped, min, max }) {
  for (let attempt = 1; !stopped(); attempt += 1) {
    try {
      return await get();
    } catch (err) {
      if (stopped()) break;
      report(err);
      await sleep(backoff(attempt, min, max));
    }
  }
  return null;
}
