// The consumer's acknowledgements: with a `consumer`, the server keeps the
// feed's cursor under that name. The client acks it by itself, at most once a
// second and once more on close, over the socket when it is up, else over HTTP.

const ACK_EVERY_MS = 1000;

export class ConsumerAcks {
  /** @param {import('./index.js').EventFeed} feed */
  constructor(feed) {
    this.feed = feed;
    this.timer = null;
    this.due = false;
    this.sent = Promise.resolve();
  }

  /** A cursor was delivered: ack it within a second. */
  schedule() {
    if (!this.feed.consumer || this.feed._stopped()) return;
    this.due = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sent = this.send().catch((err) => {
        this.feed._error(err, 'the consumer ack failed');
        this.schedule();
      });
    }, ACK_EVERY_MS);
  }

  /** Sends the last ack now, once the one under way is done. */
  async flush() {
    clearTimeout(this.timer);
    await this.sent;
    await this.send().catch((err) => this.feed._log('last ack failed', err));
  }

  stop() {
    clearTimeout(this.timer);
  }

  async send() {
    const feed = this.feed;
    if (!this.due || !feed.cursor) return;
    this.due = false;
    const cursor = feed.cursor;
    try {
      if (feed._socketConnected()) await feed._link.call('feed:ack', { cursor });
      else await feed._http('POST', '/api/events/ack', { consumer: feed.consumer, cursor });
    } catch (err) {
      this.due = true;
      throw err;
    }
  }
}
