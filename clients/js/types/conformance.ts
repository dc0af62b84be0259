// The declarations (index.d.ts, react.d.ts) checked against the code: each
// entry point's inferred types must be assignable to what is declared, so a
// declared method or option that the code lacks, or one whose shape differs,
// fails `npm run check`. The sources are also type-checked (`checkJs`).
import * as code from '../src/index.js';
import * as codeReact from '../src/react.js';
import type * as declared from '../index.d.ts';
import type * as declaredReact from '../react.d.ts';

export const Feed: typeof declared.EventFeed = code.EventFeed;
export const Error_: typeof declared.FeedError = code.FeedError;
export const useFeed: typeof declaredReact.useFeed = codeReact.useFeed;
export const useEvents: typeof declaredReact.useEvents = codeReact.useEvents;
export const usePresence: typeof declaredReact.usePresence = codeReact.usePresence;

// And the other way: every member the code has in public is declared.
type Public<T> = { [K in keyof T as K extends `_${string}` ? never : K]: T[K] };
type Undeclared = Exclude<keyof Public<code.EventFeed>, keyof declared.EventFeed>;
export const nothingUndeclared: [Undeclared] extends [never] ? true : Undeclared = true;
