// Where the last delivered cursor is kept between page loads and processes.

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
 * The key of one feed's cursor: the same server, namespace, tenant and user
 * resume from it; anyone else starts afresh. JSON keeps the parts apart
 * whatever characters the ids contain.
 */
export function cursorKey(url, namespace, claims) {
  const tenant = claims.tenant_id ?? null;
  const user = claims.sub ?? null;
  return `eventfeed:cursor:${JSON.stringify([url, namespace, tenant, user])}`;
}
