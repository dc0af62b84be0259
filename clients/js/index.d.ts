// Type declarations of eventfeed-client (docs/client.md).

/** Who appended an event. */
export interface Actor {
  userId: string;
  username?: string | null;
}

/** An event as the server stores and sends it: the same everywhere. */
export interface Envelope<Type extends string = string, Data = Record<string, unknown>> {
  id: string;
  /** Opaque: keep it, hand it back, never parse or compare it. */
  cursor: string;
  tenantId: string;
  stream: string;
  version: number;
  type: Type;
  data: Data;
  actor: Actor;
  audience: { users: string[] } | null;
  metadata: Record<string, unknown> | null;
  /** RFC 3339, UTC, milliseconds. */
  timestamp: string;
}

/** A map from event type to the shape of its `data`. */
export type EventMap = Record<string, Record<string, unknown>>;

/** Any envelope of the map, discriminated by `type`. */
export type AnyEnvelope<Events> = {
  [K in keyof Events & string]: Envelope<K, Events[K]>;
}[keyof Events & string];

/** What `append` sends. Without an `id` the client makes one, so a retry is idempotent. */
export interface AppendInput<Type extends string = string, Data = Record<string, unknown>> {
  stream: string;
  type: Type;
  data: Data;
  id?: string;
  expectedVersion?: number;
  audience?: { users: string[] } | null;
  metadata?: Record<string, unknown>;
  actor?: Actor;
}

export type Status = 'connecting' | 'replaying' | 'live' | 'fallback' | 'offline' | 'closed';

/** The payload of `feed:reset`: the feed went on from `cursor`, the head. */
export interface ResetInfo {
  cursor: string;
  reason: 'expired';
}

export interface PresenceUser {
  userId: string;
  username: string | null;
  connections: number;
}

/** What the cursor is kept in: `localStorage` fits, and so does any object like it. */
export interface CursorStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface EventFeedOptions {
  /** A JWT, or a function giving one (called for every connect and before `exp`). */
  token: string | (() => string | Promise<string>);
  /** Default `/`. */
  namespace?: string;
  /** Type patterns such as `invoice:*`; default all types. */
  types?: string[];
  /** A server-side cursor name; the client acks it by itself. */
  consumer?: string;
  /** Default `localStorage` where it exists, else memory. */
  storage?: CursorStorage;
  /** Default `"sse"` where `EventSource` exists, else `"poll"`. */
  fallback?: 'sse' | 'poll' | false;
  /** Failed connects in a row before the fallback starts; default 3. */
  fallbackAfter?: number;
}

/** The error `append`, `presence` and the HTTP calls reject with. */
export class FeedError extends Error {
  /** The contract's error code: `conflict`, `invalid`, `forbidden`, … */
  code: string;
  /** On a `conflict` about `expectedVersion`: the stream's version. */
  currentVersion?: number;
}

export class EventFeed<Events extends object = EventMap> {
  constructor(url: string, options: EventFeedOptions);
  /** The last delivered cursor, or null before the first. */
  readonly cursor: string | null;
  readonly status: Status;
  on<K extends keyof Events & string>(type: K, handler: (event: Envelope<K, Events[K]>) => void): () => void;
  on(type: '*', handler: (event: AnyEnvelope<Events>) => void): () => void;
  onStatus(handler: (status: Status) => void): () => void;
  onReset(handler: (reset: ResetInfo) => void): () => void;
  append<K extends keyof Events & string>(event: AppendInput<K, Events[K]>): Promise<Envelope<K, Events[K]>>;
  presence(): Promise<PresenceUser[]>;
  /** Stops everything; resolves once the last consumer ack is stored. */
  close(): Promise<void>;
}

export default EventFeed;
