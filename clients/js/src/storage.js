// Where the last delivered cursor is kept between page loads and processes:
// any object with getItem and setItem, synchronous (localStorage) or
// asynchronous (React Native's AsyncStorage, IndexedDB wrappers).

/** `localStorage` where it exists and works, else memory. */
export function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    if (ls) {
      const probe = '__eventfeed_probe__';
      ls.setItem(probe, probe);
      ls.removeItem(probe);
      return ls;
    }
  } catch {
    // Disabled storage (private modes, sandboxed frames) throws: use memory.
  }
  const map = new Map();
  return { getItem: (k) => (map.has(k) ? map.get(k) : null), setItem: (k, v) => void map.set(k, String(v)) };
}

/**
 * The key of one feed's cursor: the same server, namespace, tenant, user,
 * types and consumer resume from it; any other feed starts afresh, so two
 * feeds of one origin never share a cursor. JSON keeps the parts apart
 * whatever characters they contain; the types are sorted, as their order
 * does not change the feed.
 */
export function cursorKey({ url, namespace, tenant, user, types, consumer }) {
  const parts = [url, namespace, tenant ?? null, user ?? null, types ? [...types].sort() : null, consumer ?? null];
  return `eventfeed:cursor:${JSON.stringify(parts)}`;
}

/**
 * One feed's cursor in `storage`. Writes are coalesced: while one is under
 * way only the newest cursor waits, so a slow asynchronous storage is never
 * handed a queue, and the stored value never goes back to an older one.
 */
export class CursorStore {
  constructor(storage, onError) {
    this.storage = storage;
    this.onError = onError;
    this.key = null;
    this._pending = null;
    this._writing = null;
  }

  /** The cursor kept under `key` (which later writes use), or null. */
  async load(key) {
    this.key = key;
    try {
      const value = await this.storage.getItem(key);
      return typeof value === 'string' && value ? value : null;
    } catch (err) {
      this.onError(err);
      return null;
    }
  }

  save(cursor) {
    if (!this.key) return;
    this._pending = { key: this.key, cursor };
    if (!this._writing) this._writing = this._drain();
  }

  /** Resolves once every cursor saved so far is written (or failed). */
  flushed() {
    return this._writing ?? Promise.resolve();
  }

  async _drain() {
    while (this._pending) {
      const { key, cursor } = this._pending;
      this._pending = null;
      try {
        await this.storage.setItem(key, cursor);
      } catch (err) {
        // A full or disabled storage costs the resume after a reload, not the feed.
        this.onError(err);
      }
    }
    this._writing = null;
  }
}
