// eventfeed-client/react: hooks over one EventFeed.
//
// Under StrictMode React runs every effect twice on mount (set up, clean up,
// set up again). Closing the feed in the cleanup and opening a new one would
// connect twice, so the cleanup only schedules the close; the second set-up,
// which comes before any timer can fire, finds the same feed in its ref and
// cancels it. A real unmount lets the timer run and closes the feed.

import { useEffect, useRef, useState } from 'react';
import { EventFeed } from './index.js';

/** The options that make a feed another feed; functions and objects kept by reference are left out. */
function identity(url, options) {
  const { token, storage, ...rest } = options ?? {};
  return JSON.stringify([url, typeof token === 'string' ? token : null, rest]);
}

/** The feed of `url` and `options`, or null before it exists; one feed, and one socket, per mounted component. */
export function useFeed(url, options) {
  const [feed, setFeed] = useState(null);
  const held = useRef(null);
  // The latest token function, so a new closure each render neither
  // reconnects nor leaves the feed calling a stale one.
  const latest = useRef(options);
  latest.current = options;
  const key = identity(url, options);

  useEffect(() => {
    let h = held.current;
    if (h && h.key === key) {
      clearTimeout(h.closing);
    } else {
      const o = latest.current ?? {};
      const token = typeof o.token === 'function' ? () => latest.current.token() : o.token;
      h = { key, feed: new EventFeed(url, { ...o, token }), closing: null };
      held.current = h;
    }
    setFeed(h.feed);
    return () => {
      h.closing = setTimeout(() => {
        if (held.current === h) held.current = null;
        void h.feed.close();
      });
    };
  }, [key]);

  return feed;
}

/** The events of `type` (default `"*"`) the feed delivered since this component mounted, in cursor order. */
export function useEvents(feed, type = '*') {
  const [events, setEvents] = useState([]);
  useEffect(() => {
    setEvents([]);
    if (!feed) return undefined;
    return feed.on(type, (e) => setEvents((list) => [...list, e]));
  }, [feed, type]);
  return events;
}

/** The tenant's users online, kept current; an empty list until known. */
export function usePresence(feed) {
  const [users, setUsers] = useState([]);
  useEffect(() => {
    setUsers([]);
    if (!feed) return undefined;
    return feed.onPresence((list) => setUsers(list));
  }, [feed]);
  return users;
}
