// A small React app on eventfeed-client/react, rendered under StrictMode:
// the feed's status, its events and who is online. The server's address and
// the token come in the fragment: #server=<url>&token=<jwt>. A button
// unmounts the feed's component, which must close the feed.
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useEvents, useFeed, usePresence } from '../../src/react.js';

const params = new URLSearchParams(location.hash.slice(1));

function Feed() {
  // A token function, as apps use, counting its calls: StrictMode must not double them.
  const token = () => {
    window.tokenCalls = (window.tokenCalls ?? 0) + 1;
    return params.get('token');
  };
  const feed = useFeed(params.get('server'), { token, after: '0', fallback: false });
  const events = useEvents(feed);
  const users = usePresence(feed);
  const [status, setStatus] = useState('none');
  useEffect(() => {
    if (!feed) return undefined;
    // Every feed this component was ever given: StrictMode must not make two.
    window.feeds = (window.feeds ?? new Set()).add(feed);
    setStatus(feed.status);
    return feed.onStatus((s) => setStatus(s.status));
  }, [feed]);
  return (
    <main>
      <p>
        Status: <b data-test="status">{status}</b>
      </p>
      <h2>Events</h2>
      <ol data-test="events">
        {events.map((e) => (
          <li key={e.cursor} data-test="event" data-i={e.data.i}>
            {e.type} #{e.data.i}
          </li>
        ))}
      </ol>
      <h2>Online</h2>
      <ul data-test="presence">
        {users.map((u) => (
          <li key={u.userId} data-test="user" data-user={u.userId} data-connections={u.connections}>
            {u.username ?? u.userId} ({u.connections})
          </li>
        ))}
      </ul>
    </main>
  );
}

function App() {
  const [shown, setShown] = useState(true);
  return (
    <>
      <button data-test="toggle" onClick={() => setShown((s) => !s)}>
        {shown ? 'unmount' : 'mount'}
      </button>
      {shown && <Feed />}
    </>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
