// Every part of the API, type-checked with `tsc --strict` (npm run check).
import { EventFeed, FeedError, type Envelope, type Status, type StatusInfo } from 'eventfeed-client';

interface InvoiceEvents {
  'invoice:created': { invoiceNumber: string; amount: number; currency: string };
  'invoice:paid': { invoiceNumber: string; amount: number };
}

async function fetchToken(): Promise<string> {
  const res = await fetch('/auth/token');
  return ((await res.json()) as { token: string }).token;
}

const feed = new EventFeed<InvoiceEvents>('https://events.example.com', {
  token: fetchToken,
  namespace: '/',
  types: ['invoice:*'],
  consumer: 'billing-dashboard',
  fallback: 'sse',
  fallbackAfter: 3,
  after: 'stored',
  tenantClaim: 'org_id',
  reconnectionDelay: 1000,
  reconnectionDelayMax: 30_000,
  ackTimeout: 5000,
  transports: ['websocket'],
  debug: false,
});

let total = 0;
const stop = feed.on('invoice:paid', (e) => {
  total += e.data.amount; // typed: number
});
feed.on('*', (e) => {
  if (e.type === 'invoice:created') console.log(e.data.invoiceNumber, e.data.currency);
  const envelope: Envelope = e;
  console.log(envelope.cursor, envelope.version, envelope.actor.userId);
});
feed.onStatus(({ status, reason }: StatusInfo) => {
  const now: Status = status;
  if (now === 'unauthorized') console.log('sign in again:', reason);
});
feed.onError((err: FeedError) => console.log(err.code, err.message));
feed.onPresence((users, { online }) => console.log(online, users.map((u) => u.userId)));
feed.onTyping((t) => console.log(`${t.username ?? t.userId} types in ${t.resourceType} ${t.resourceId}`));
feed.on('user:online', (u) => console.log(u.userId, 'came online at', u.timestamp));
feed.onReset(({ cursor, reason }) => console.log('reload state: reset to', cursor, reason));

async function pay(invoiceNumber: string, amount: number, expectedVersion: number): Promise<number> {
  try {
    const stored = await feed.append({
      stream: `invoice-${invoiceNumber}`,
      type: 'invoice:paid',
      data: { invoiceNumber, amount },
      expectedVersion,
    });
    return stored.version;
  } catch (err) {
    if (err instanceof FeedError && err.code === 'conflict') return err.currentVersion ?? -1;
    throw err;
  }
}

async function main(): Promise<void> {
  await pay('INV-1', 1200, 0);
  const online = await feed.presence();
  console.log(online.map((u) => `${u.username ?? u.userId} (${u.connections})`), total);
  feed.typing('INV-1', 'invoice');
  await feed.setTypes(['invoice:paid']);
  for await (const page of feed.history({ after: '0', types: ['invoice:*'], limit: 500 })) {
    for (const e of page.events) console.log(e.type, e.cursor);
  }
  for await (const page of feed.stream('invoice-INV-1', { fromVersion: 1 })) console.log(page.events.length);
  for await (const page of feed.audit({ actor: 'u-17', from: new Date(0), limit: 100 })) console.log(page.hasMore);
  stop();
  await feed.close();
}

// Read a snapshot over REST, then follow from the cursor it was read at.
async function snapshotThenFollow(token: string, snapshotCursor: string): Promise<EventFeed<InvoiceEvents>> {
  return new EventFeed<InvoiceEvents>('https://events.example.com', { token, after: snapshotCursor });
}
void snapshotThenFollow;

void main();

// With a string token and no type map, data is a plain record.
const plain = new EventFeed('http://localhost:3000', { token: 'jwt', fallback: false });
plain.on('anything:happened', (e) => console.log(e.data['whatever']));

// The map is enforced: these must not compile.
// @ts-expect-error `amount` is a number
feed.on('invoice:paid', (e) => e.data.amount.toUpperCase());
// @ts-expect-error not a type of the map
feed.on('invoice:lost', () => {});
// @ts-expect-error data of the wrong shape
void feed.append({ stream: 's', type: 'invoice:paid', data: { amount: 1 } });
