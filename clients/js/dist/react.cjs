var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/react.js
var react_exports = {};
__export(react_exports, {
  useEvents: () => useEvents,
  useFeed: () => useFeed,
  usePresence: () => usePresence
});
module.exports = __toCommonJS(react_exports);
var import_react = require("react");
var import_index = require("./index.cjs");
function identity(url, options) {
  const { token, storage, ...rest } = options ?? {};
  return JSON.stringify([url, typeof token === "string" ? token : null, rest]);
}
function useFeed(url, options) {
  const [feed, setFeed] = (0, import_react.useState)(null);
  const held = (0, import_react.useRef)(null);
  const latest = (0, import_react.useRef)(options);
  latest.current = options;
  const key = identity(url, options);
  (0, import_react.useEffect)(() => {
    let h = held.current;
    if (h && h.key === key) {
      clearTimeout(h.closing);
    } else {
      const o = latest.current ?? {};
      const token = typeof o.token === "function" ? () => latest.current.token() : o.token;
      h = { key, feed: new import_index.EventFeed(url, { ...o, token }), closing: null };
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
function useEvents(feed, type = "*") {
  const [events, setEvents] = (0, import_react.useState)([]);
  (0, import_react.useEffect)(() => {
    setEvents([]);
    if (!feed) return void 0;
    return feed.on(type, (e) => setEvents((list) => [...list, e]));
  }, [feed, type]);
  return events;
}
function usePresence(feed) {
  const [users, setUsers] = (0, import_react.useState)([]);
  (0, import_react.useEffect)(() => {
    setUsers([]);
    if (!feed) return void 0;
    return feed.onPresence((list) => setUsers(list));
  }, [feed]);
  return users;
}
