// Live presence: the tenant's users online, read once with `presence:list`
// when the socket connects and kept current from the server's pushes:
// `presence:diff` `{ online, joins?, leaves? }` and `user:online` /
// `user:offline`. Above the server's list limit a diff carries only the
// count; then the names are listed again, at most once every few seconds.
// Whenever the count a diff announces differs from the users held, the list
// is read again, so a push missed while listing heals itself.

const RELIST_MS = 1000;
const RELIST_LARGE_MS = 5000;

export class Presence {
  /** @param {object} feed the EventFeed: `presence()`, `_error()` and `_call()` */
  constructor(feed) {
    this.feed = feed;
    this.users = new Map();
    this.online = 0;
    this.known = false;
    this.handlers = new Set();
    this._listing = null;
    this._again = false;
    this._listedAt = 0;
    this._timer = null;
  }

  /** Adds a handler, called now if the list is known and at every change. */
  on(handler) {
    const entry = (users, info) => this.feed._call(handler, users, info);
    this.handlers.add(entry);
    if (this.known) entry(this.list(), { online: this.online });
    else if (this.handlers.size === 1) this.relist(0);
    return () => this.handlers.delete(entry);
  }

  list() {
    return [...this.users.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  }

  /** The socket (re)connected: what was held may be stale. */
  connected() {
    if (this.handlers.size) this.relist(0);
  }

  /** @param {{ online?: number, joins?: { userId: string, username?: string | null }[], leaves?: string[] }} [diff] */
  diff({ online, joins, leaves } = {}) {
    let changed = false;
    for (const { userId, username } of joins ?? []) changed = this._join(userId, username) || changed;
    for (const userId of leaves ?? []) changed = this.users.delete(userId) || changed;
    if (typeof online === 'number' && online !== this.online) {
      this.online = online;
      changed = true;
    }
    if (this.online !== this.users.size) this.relist(joins || leaves ? RELIST_MS : RELIST_LARGE_MS);
    if (changed) this._emit();
  }

  /** @param {{ userId?: string, username?: string | null }} [user] */
  userOnline({ userId, username } = {}) {
    if (!this._join(userId, username)) return;
    this.online = Math.max(this.online, this.users.size);
    this._emit();
  }

  /** @param {{ userId?: string }} [user] */
  userOffline({ userId } = {}) {
    if (!this.users.delete(userId)) return;
    this.online = this.users.size;
    this._emit();
  }

  stop() {
    clearTimeout(this._timer);
    this.handlers.clear();
  }

  /** Lists the users again, no sooner than `gap` ms after the last listing. */
  relist(gap) {
    if (!this.handlers.size) return;
    if (this._listing) {
      this._again = true;
      return;
    }
    const wait = Math.max(0, this._listedAt + gap - Date.now());
    if (wait > 0) {
      if (!this._timer) this._timer = setTimeout(() => ((this._timer = null), this.relist(0)), wait);
      return;
    }
    this._listing = this._list().finally(() => {
      this._listing = null;
      this._listedAt = Date.now();
      if (this._again) {
        this._again = false;
        this.relist(RELIST_MS);
      }
    });
  }

  async _list() {
    try {
      const users = await this.feed.presence();
      this.users = new Map(users.map((u) => [u.userId, { ...u }]));
      this.online = this.users.size;
      this.known = true;
      this._emit();
    } catch (err) {
      this.feed._error(err, 'listing presence failed');
    }
  }

  _join(userId, username) {
    if (typeof userId !== 'string' || this.users.has(userId)) return false;
    this.users.set(userId, { userId, username: username ?? null, connections: 1 });
    return true;
  }

  _emit() {
    if (!this.known) return;
    const users = this.list();
    for (const h of [...this.handlers]) h(users, { online: this.online });
  }
}
