"""A second client of the feed, written from docs/protocol.md alone.

Plain python-socketio (socketio.Client) and the standard library, no code of
the project: if this client works, the protocol page is enough to write one.
It starts the server on the embedded store in a temp dir and checks, with the
page's own words as the expectations: a token in the handshake; event:append
received live as an emit named by its type; a reconnect with auth.after
replaying exactly the missed events, then feed:replayed; feed:subscribe
filtering; feed:ack with a consumer, resumed by auth.consumer; presence:list,
presence:diff and user:online/offline within the grace; and, after a restart
with a retention that expires every event, feed:reset instead of a replay.
Usage: python3 protocol_client.py <path to eventfeed binary>
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta

import socketio

SECRET = "protocol-client-test-secret"
WAIT = 10  # seconds any one expectation may take before the test fails
GRACE = 2  # EVENTFEED_PRESENCE_GRACE, in seconds
# Names the server itself emits; any other emit is a stored event (Events, "Reserved types").
RESERVED_DOMAINS = {"feed", "auth", "presence", "request", "event"}
RESERVED_NAMES = {"user:online", "user:offline", "user:typing", "reconnected", "connect", "disconnect",
                  "connect_error", "error"}


def is_stored_event(name):
    return name.split(":", 1)[0] not in RESERVED_DOMAINS and name not in RESERVED_NAMES


def wait_until(predicate, what):
    """Polls predicate until it is true or WAIT seconds pass; fails naming what was awaited."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {WAIT} s waiting for {what}"
        time.sleep(0.05)


class Server:
    """One eventfeed process on the embedded store, and its HTTP API."""

    def __init__(self, binary, data_file, **extra):
        env = dict(os.environ, EVENTFEED_JWT_SECRET=SECRET, EVENTFEED_ADDR="127.0.0.1:0",
                   EVENTFEED_DRAIN="0", EVENTFEED_DATA_FILE=data_file,
                   EVENTFEED_PRESENCE_GRACE=f"{GRACE}s", **extra)
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen([binary, "serve"], env=env, cwd=os.path.dirname(data_file),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on "), f"unexpected first line: {line!r}"
        self.url = "http://" + line.removeprefix("listening on ")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(WAIT)

    def http(self, method, path, token=None, body=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.startswith("{") else text)

    def append(self, token, *events):
        status, body = self.http("POST", "/api/events", token, {"events": list(events)})
        assert status == 201, (status, body)
        return body["events"]


def mint(binary, user, name=None):
    args = [binary, "token", "--tenant", "acme", "--user", user, "--roles", "publisher"]
    if name:
        args += ["--name", name]
    out = subprocess.run(args, env=dict(os.environ, EVENTFEED_JWT_SECRET=SECRET), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


class Feed:
    """One socketio.Client over WebSocket; every server emit is kept, in arrival order."""

    def __init__(self, url, auth):
        self.received = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)
        self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=WAIT)

    def _record(self, name, *args):
        with self.lock:
            self.received.append((name, args[0] if args else None))

    def emits(self, name=None):
        with self.lock:
            return [(n, p) for n, p in self.received if name is None or n == name]

    def events(self):
        """The stored events received so far, in order."""
        return [p for n, p in self.emits() if is_stored_event(n)]

    def wait_for(self, name, what, match=lambda payload: True):
        """The first emit called name whose payload matches, waited for."""
        def matching():
            return [payload for _, payload in self.emits(name) if match(payload)]

        wait_until(matching, f"{what} (received so far: {[n for n, _ in self.emits()]})")
        return matching()[0]

    def call(self, name, payload=None):
        return self.sio.call(name, payload, timeout=WAIT)

    def close(self):
        self.sio.disconnect()


def refused(url, auth):
    """The connect_error message of a handshake that must be refused."""
    client, reasons = socketio.Client(reconnection=False), []
    client.on("connect_error", reasons.append)
    try:
        client.connect(url, auth=auth, transports=["websocket"], wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError:
        assert reasons, "a refused handshake without connect_error"
        return reasons[0]["message"]
    client.disconnect()
    raise AssertionError(f"handshake {auth} was accepted")


def ids(events):
    return [(e["id"], e["cursor"]) for e in events]


def check_live_then_replay(binary, server):
    """event:append arrives live, named by its type; a reconnect with after replays exactly the gap."""
    writer, reader_token = Feed(server.url, {"token": mint(binary, "writer")}), mint(binary, "reader")
    reader = Feed(server.url, {"token": reader_token})
    answer = writer.call("event:append", {"stream": "inv-1", "type": "invoice:paid", "data": {"n": 1}})
    assert answer["ok"] is True, answer
    stored = answer["event"]
    assert (stored["stream"], stored["version"], stored["tenantId"], stored["actor"]["userId"]) == \
        ("inv-1", 1, "acme", "writer"), stored
    live = reader.wait_for("invoice:paid", "the appended event, live")
    assert live == stored, f"the live envelope differs from the append's answer: {live} != {stored}"
    assert not reader.emits("feed:replayed"), "feed:replayed on a connection with neither after nor consumer"
    reader.close()

    missed = server.append(reader_token, {"stream": "inv-1", "type": "invoice:sent", "data": {"n": 2}},
                           {"stream": "exp-1", "type": "expense:approved", "data": {"n": 3}},
                           {"stream": "inv-1", "type": "invoice:paid", "data": {"n": 4}})
    reader = Feed(server.url, {"token": reader_token, "after": live["cursor"]})
    done = reader.wait_for("feed:replayed", "feed:replayed after the missed events")
    assert done == {"count": 3, "cursor": missed[-1]["cursor"]}, done
    names = [n for n, _ in reader.emits()]
    assert names.index("feed:replayed") == 3, f"the replay is not the 3 missed events, then feed:replayed: {names}"
    assert reader.events() == missed, f"replayed {reader.events()}, missed {missed}"

    after = writer.call("event:append", {"stream": "inv-1", "type": "invoice:void", "data": {}})["event"]
    reader.wait_for("invoice:void", "a live event after the replay")
    assert ids(reader.events()) == ids(missed + [after]), "a gap or a duplicate between replay and live"
    assert refused(server.url, {"token": reader_token, "after": "not a cursor"}) == "invalid cursor"
    assert refused(server.url, {"token": "not-a-token"}).startswith("authentication failed: ")
    reader.close()
    writer.close()


def check_subscribe(binary, server):
    """feed:subscribe narrows what the socket receives; [] widens it to every type again."""
    token = mint(binary, "subscriber")
    feed = Feed(server.url, {"token": token})
    assert feed.call("feed:subscribe", {"types": ["invoice:*"]}) == {"ok": True}
    sent = server.append(token, {"stream": "inv-2", "type": "invoice:paid", "data": {}},
                         {"stream": "exp-2", "type": "expense:approved", "data": {}},
                         {"stream": "inv-2", "type": "invoice:line:added", "data": {}},
                         {"stream": "x-2", "type": "invoices:x", "data": {}},
                         {"stream": "inv-2", "type": "invoice:sent", "data": {}})
    feed.wait_for("invoice:sent", "the last event matching invoice:*")
    # Delivery is in cursor order, so anything unfiltered would have come before invoice:sent.
    assert ids(feed.events()) == ids([sent[0], sent[2], sent[4]]), feed.events()

    bad = feed.call("feed:subscribe", {"types": ["not a pattern"]})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid", bad
    assert feed.call("feed:subscribe", {"types": []}) == {"ok": True}
    other = server.append(token, {"stream": "exp-2", "type": "expense:approved", "data": {}})[0]
    feed.wait_for("expense:approved", "an expense once the filter is []")
    no_consumer = feed.call("feed:ack", {"cursor": other["cursor"]})
    assert no_consumer["ok"] is False and no_consumer["error"]["code"] == "invalid", no_consumer
    feed.close()
    return other["cursor"]


def check_consumer(binary, server, newest):
    """A new consumer starts at the newest event; reconnecting resumes after the acked cursor."""
    auth = {"token": mint(binary, "worker"), "consumer": "py-inbox"}
    feed = Feed(server.url, auth)
    start = feed.wait_for("feed:replayed", "feed:replayed of a new consumer")
    assert start == {"count": 0, "cursor": newest}, f"a new consumer starts at the newest event {newest}: {start}"
    sent = server.append(auth["token"], *({"stream": "job-1", "type": "job:queued", "data": {"n": n}}
                                          for n in range(3)))
    wait_until(lambda: len(feed.events()) == 3, "the consumer's 3 live events")
    assert ids(feed.events()) == ids(sent), feed.events()
    assert feed.call("feed:ack", {"cursor": sent[0]["cursor"]}) == {"ok": True}
    feed.close()

    feed = Feed(server.url, auth)
    done = feed.wait_for("feed:replayed", "feed:replayed after the acked cursor")
    assert done == {"count": 2, "cursor": sent[2]["cursor"]}, done
    assert ids(feed.events()) == ids(sent[1:]), f"the consumer did not resume after its ack: {feed.events()}"
    feed.close()


def leaves_of(feed):
    return [u for _, d in feed.emits("presence:diff") for u in d.get("leaves", [])]


def check_presence(binary, server):
    """presence:list, and presence:diff and user:online/offline, with the grace on leaving."""
    watcher = Feed(server.url, {"token": mint(binary, "a-watcher", "Watcher")})
    bob_token = mint(binary, "bob", "Bob")
    bob = Feed(server.url, {"token": bob_token})
    joined = watcher.wait_for("presence:diff", "a diff with bob's join",
                              lambda d: {"userId": "bob", "username": "Bob"} in d.get("joins", []))
    assert joined["online"] == 2, joined
    online = watcher.wait_for("user:online", "user:online of bob", lambda u: u["userId"] == "bob")
    assert online["username"] == "Bob" and datetime.fromisoformat(online["timestamp"].replace("Z", "+00:00"))
    listed = watcher.call("presence:list")
    assert listed == {"users": [{"userId": "a-watcher", "username": "Watcher", "connections": 1},
                                {"userId": "bob", "username": "Bob", "connections": 1}]}, listed

    bob.close()  # and back at once, well within the grace: nobody is told bob left
    bob = Feed(server.url, {"token": bob_token})
    carol = Feed(server.url, {"token": mint(binary, "carol")})
    watcher.wait_for("presence:diff", "carol's join", lambda d: {"userId": "carol", "username": None}
                     in d.get("joins", []))
    carol.close()
    closed = time.monotonic()
    watcher.wait_for("presence:diff", "carol's leave", lambda d: "carol" in d.get("leaves", []))
    assert time.monotonic() - closed >= GRACE * 0.9, "carol was announced gone before the grace ran out"
    # bob closed before carol, so his leave, had it been announced, would have come by now.
    assert "bob" not in leaves_of(watcher), "bob came back within the grace, yet was announced gone"
    assert "bob" not in [u["userId"] for _, u in watcher.emits("user:offline")], "user:offline for bob"

    bob.close()
    left = watcher.wait_for("presence:diff", "bob's leave", lambda d: "bob" in d.get("leaves", []))
    assert left["online"] == 1, left
    watcher.wait_for("user:offline", "user:offline of bob", lambda u: u["userId"] == "bob")
    assert watcher.call("presence:list") == {"users": [{"userId": "a-watcher", "username": "Watcher",
                                                        "connections": 1}]}
    watcher.close()


def check_reset(binary, data_file, server, expired):
    """A restart with a retention every stored event is older than: a socket after one gets feed:reset."""
    token = mint(binary, "rebuilder")
    _, page = server.http("GET", f"/api/events?after={expired}", token)
    last = datetime.fromisoformat(page["events"][-1]["timestamp"].replace("Z", "+00:00")) if page["events"] \
        else datetime.now().astimezone()
    server.stop()
    wait_until(lambda: datetime.now().astimezone() > last + timedelta(seconds=1.5), "the events to be 1 s old")
    server = Server(binary, data_file, EVENTFEED_RETENTION="1s")
    try:
        wait_until(lambda: pruned(server) > 0, "the retention to delete the expired events")
        head = server.append(token, {"stream": "inv-9", "type": "invoice:paid", "data": {}})[0]
        feed = Feed(server.url, {"token": token, "after": expired})
        reset = feed.wait_for("feed:reset", "feed:reset for an expired cursor")
        assert reset == {"cursor": head["cursor"], "reason": "expired"}, reset
        later = server.append(token, {"stream": "inv-9", "type": "invoice:sent", "data": {}})[0]
        feed.wait_for("invoice:sent", "a live event after the reset")
        assert ids(feed.events()) == ids([later]), f"a reset replays nothing: {feed.events()}"
        assert not feed.emits("feed:replayed"), "feed:replayed after a feed:reset"
        feed.close()

        feed = Feed(server.url, {"token": token, "after": reset["cursor"]})
        done = feed.wait_for("feed:replayed", "the replay after the reset's cursor")
        assert done == {"count": 1, "cursor": later["cursor"]} and ids(feed.events()) == ids([later]), done
        feed.close()
    finally:
        server.stop()


def pruned(server):
    _, text = server.http("GET", "/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("eventfeed_pruned_events_total"))


def main():
    binary = os.path.abspath(sys.argv[1])
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        data_file = os.path.join(workdir, "events.db")
        server = Server(binary, data_file)
        try:
            check_live_then_replay(binary, server)
            newest = check_subscribe(binary, server)
            check_consumer(binary, server, newest)
            check_presence(binary, server)
            check_reset(binary, data_file, server, expired=newest)
        finally:
            if server.proc.poll() is None:
                server.stop()
    print(f"protocol client (python-socketio, from docs/protocol.md): ok in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
