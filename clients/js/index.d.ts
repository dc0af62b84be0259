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

export type Status = 'connecting' | 'replaying' | 'live' | 'fallback' | 'offline' | 'unauthorized' | 'closed';

/** What `onStatus` handlers get. `error` is set when the feed stopped for good. */
export interface StatusInfo {
  status: Status;
  /** Why: the server's refusal, the disconnect reason, … */
  reason?: string;
  error?: FeedError;
}

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

/** `user:online` and `user:offline`. */
export interface UserPresenceEvent {
  userId: string;
  username: string | null;
  timestamp: string;
}

/** `user:typing`, relayed from another user of the tenant. */
export interface TypingEvent {
  userId: string;
  username: string | null;
  resourceId: string;
  resourceType: string;
}

/** The emits that are not events, and that `on` also takes. */
export interface Signals {
  'user:online': UserPresenceEvent;
  'user:offline': UserPresenceEvent;
  'user:typing': TypingEvent;
}

/**
 * What the cursor is kept in: `localStorage` fits, and so does any object
 * like it whose methods return promises (React Native's AsyncStorage).
 */
export interface CursorStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>;
  setItem(key: string, value: string): void | Promise<void>;
}

export interface EventFeedOptions {
  /** A JWT, or a function giving one (called for every connect and before `exp`). */
  token: string | (() => string | Promise<string>);
  /** Default `/`. */
  namespace?: string;
  /** Type patterns such as `invoice:*`, sent in the handshake; default all types. */
  types?: string[];
  /** A server-side cursor name; the client acks it by itself. */
  consumer?: string;
  /** Where the feed starts: `"stored"` (default), `"head"`, or a cursor. */
  after?: 'stored' | 'head' | string | 0;
  /** The token claim that names the tenant; default `tenant_id`. */
  tenantClaim?: string;
  /** Default `localStorage` where it exists, else memory. */
  storage?: CursorStorage;
  /** Default `"sse"` where `EventSource` exists, else `"poll"`. */
  fallback?: 'sse' | 'poll' | false;
  /** Failed connects in a row before the fallback starts; default 3. */
  fallbackAfter?: number;
  /** Logs each step with `console.debug`. */
  debug?: boolean;
  /** Socket.IO's path; default `/socket.io/`. */
  path?: string;
  /** Socket.IO's transports; default `["polling", "websocket"]`. */
  transports?: ('polling' | 'websocket' | 'webtransport')[];
  /** Sends cookies on cross-origin requests. */
  withCredentials?: boolean;
  /** Headers for every request (in browsers, not on the WebSocket). */
  extraHeaders?: Record<string, string>;
  /** Milliseconds before the first retry (default 500), doubling up to `reconnectionDelayMax` (default 10,000). */
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  /** Milliseconds to wait for an acknowledgement; default 10,000. */
  ackTimeout?: number;
  /** Seconds one long-poll of the `"poll"` fallback waits; default 25. */
  pollWait?: number;
}

/** One page of `history` or `audit`. */
export interface Page<E = Envelope> {
  events: E[];
  /** The last event's cursor, or the one asked after. */
  cursor: string;
  hasMore: boolean;
}

/** One page of `stream`. */
export interface StreamPage<E = Envelope> {
  events: E[];
  hasMore: boolean;
}

export interface HistoryOptions {
  /** Default `0`, before the first event. */
  after?: string;
  types?: string[];
  /** The page size, 1-1000; default 100. */
  limit?: number;
}

export interface StreamOptions {
  /** Default 1. */
  fromVersion?: number;
  /** The page size, 1-1000; default 1000. */
  limit?: number;
}

export interface AuditFilters {
  type?: string;
  stream?: string;
  actor?: string;
  from?: string | Date;
  to?: string | Date;
  after?: string;
  /** The page size. */
  limit?: number;
}

/** An error as the server answers it (`{ error: { code, message, … } }`). */
export interface FeedErrorBody {
  code?: string;
  message?: string;
  currentVersion?: number;
  path?: string;
  rule?: string;
  index?: number;
}

/** Everything the library rejects with or reports. */
export class FeedError extends Error {
  constructor(error?: FeedErrorBody, cause?: unknown);
  /**
   * The server's error code (`conflict`, `invalid`, `invalid_cursor`,
   * `unauthorized`, `forbidden`, `not_found`, `too_large`, `rate_limited`,
   * `unavailable`, `internal`), or `network` or `timeout`.
   */
  code: string;
  /** On a `conflict` about `expectedVersion`: the stream's version. */
  currentVersion?: number;
  /** On a schema refusal: the failing location and rule. */
  path?: string;
  rule?: string;
  /** In a batch: the index of the refused event. */
  index?: number;
}

export class EventFeed<Events extends object = EventMap> {
  constructor(url: string, options: EventFeedOptions);
  /** The server's URL, without a trailing `/`. */
  readonly url: string;
  readonly namespace: string;
  readonly consumer: string | null;
  /** The last delivered cursor, or null before the first. */
  readonly cursor: string | null;
  readonly status: Status;
  readonly types: string[] | null;
  on(type: '*', handler: (event: AnyEnvelope<Events>) => void): () => void;
  on<K extends keyof Signals>(type: K, handler: (payload: Signals[K]) => void): () => void;
  on<K extends keyof Events & string>(type: K, handler: (event: Envelope<K, Events[K]>) => void): () => void;
  onStatus(handler: (info: StatusInfo) => void): () => void;
  onReset(handler: (reset: ResetInfo) => void): () => void;
  /** Every error the feed recovers from by itself. */
  onError(handler: (error: FeedError) => void): () => void;
  /** The users online, now (once known) and at every change. */
  onPresence(handler: (users: PresenceUser[], info: { online: number }) => void): () => void;
  onTyping(handler: (typing: TypingEvent) => void): () => void;
  /** Tells the tenant this user is typing; false while the socket is down. */
  typing(resourceId: string, resourceType: string): boolean;
  /** Changes the types of the running feed. */
  setTypes(patterns: string[] | null): Promise<void>;
  append<K extends keyof Events & string>(event: AppendInput<K, Events[K]>): Promise<Envelope<K, Events[K]>>;
  presence(): Promise<PresenceUser[]>;
  history(options?: HistoryOptions): AsyncGenerator<Page<AnyEnvelope<Events>>, void, undefined>;
  stream(name: string, options?: StreamOptions): AsyncGenerator<StreamPage<AnyEnvelope<Events>>, void, undefined>;
  audit(filters?: AuditFilters): AsyncGenerator<Page<AnyEnvelope<Events>>, void, undefined>;
  /** Stops everything; resolves once the last consumer ack and cursor are stored. */
  close(): Promise<void>;
}

export default EventFeed;
