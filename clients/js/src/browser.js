// Entry of the browser build (dist/eventfeed.js): the global `EventFeed`.
import { EventFeed } from './index.js';

globalThis.EventFeed = EventFeed;
