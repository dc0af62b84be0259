// Type declarations of eventfeed-client/react.
import type { AnyEnvelope, Envelope, EventFeed, EventFeedOptions, EventMap, PresenceUser } from './index.js';

/** The feed of `url` and `options`, or null before it exists. One socket per feed, under StrictMode too. */
export function useFeed<Events extends object = EventMap>(url: string, options: EventFeedOptions): EventFeed<Events> | null;
/** The events the feed delivered since the component mounted, in cursor order. */
export function useEvents<Events extends object, K extends keyof Events & string>(
  feed: EventFeed<Events> | null,
  type: K,
): Envelope<K, Events[K]>[];
export function useEvents<Events extends object>(feed: EventFeed<Events> | null, type?: '*'): AnyEnvelope<Events>[];
/** The tenant's users online, kept current. */
export function usePresence(feed: EventFeed<any> | null): PresenceUser[];
