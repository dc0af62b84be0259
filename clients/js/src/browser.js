// Entry of the browser build (dist/eventfeed.js): the globals `EventFeed` and `FeedError`.
import { EventFeed, FeedError } from './index.js';

globalThis.EventFeed = EventFeed;
globalThis.FeedError = FeedError;
