"""python-socketio, unmodified, against a real eventfeed server.

Starts the server on the embedded store in a temp dir, replays, appends over
the socket, receives live, and checks the refusal message of a bad token; then
again with EVENTFEED_CORS_ORIGINS set, which python-socketio must pass: over
WebSocket it sends its target URL as Origin, the server's own origin.
Usage: python3 client_test.py <path to eventfeed binary>
"""
import os
import subprocess
import sys
import tempfile
import threading

import socketio

SECRET = "python-client-test-secret"


def start_server(binary, workdir, **extra):
    env = dict(os.environ, EVENTFEED_JWT_SECRET=SECRET, EVENTFEED_ADDR="127.0.0.1:0",
               EVENTFEED_DRAIN="0", EVENTFEED_DATA_FILE=os.path.join(workdir, "events.db"), **extra)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([binary, "serve"], env=env, cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), f"unexpected first line: {line!r}"
    return proc, "http://" + line.removeprefix("listening on ")


def token(binary, user):
    out = subprocess.run([binary, "token", "--tenant", "acme", "--user", user, "--roles", "publisher"],
                         env=dict(os.environ, EVENTFEED_JWT_SECRET=SECRET), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def main():
    binary = os.path.abspath(sys.argv[1])
    for extra in [{}, {"EVENTFEED_CORS_ORIGINS": "https://app.example.com"}]:
        with tempfile.TemporaryDirectory() as workdir:
            proc, url = start_server(binary, workdir, **extra)
            try:
                run(binary, url)
            finally:
                proc.terminate()
                proc.wait(10)
        print(f"python-socketio client{' with ' if extra else ''}{', '.join(extra)}: ok")


def run(binary, url):
    writer = socketio.Client()
    writer.connect(url, auth={"token": token(binary, "writer")}, transports=["websocket"])
    first = writer.call("event:append", {"stream": "py-1", "type": "invoice:paid", "data": {"n": 1}}, timeout=5)
    assert first["ok"] is True, first
    cursor_before = "0"

    reader = socketio.Client()
    got, replayed = [], threading.Event()
    reader.on("invoice:paid", lambda e: got.append(e))
    reader.on("feed:replayed", lambda r: replayed.set())
    reader.connect(url, auth={"token": token(binary, "reader"), "after": cursor_before}, transports=["websocket"])
    assert replayed.wait(5), "no feed:replayed"
    assert [e["data"]["n"] for e in got] == [1], got

    second = writer.call("event:append", {"stream": "py-1", "type": "invoice:paid", "data": {"n": 2},
                                          "expectedVersion": 1}, timeout=5)
    assert second["ok"] is True and second["event"]["version"] == 2, second
    conflict = writer.call("event:append", {"stream": "py-1", "type": "invoice:paid", "data": {},
                                            "expectedVersion": 0}, timeout=5)
    assert conflict["error"]["code"] == "conflict" and conflict["error"]["currentVersion"] == 2, conflict
    for _ in range(50):
        if len(got) == 2:
            break
        reader.sleep(0.1)
    assert [e["data"]["n"] for e in got] == [1, 2], got
    reader.disconnect()
    writer.disconnect()

    refused = socketio.Client()
    reasons = []
    refused.on("connect_error", lambda data: reasons.append(data))
    try:
        refused.connect(url, auth={"token": "not-a-token"}, transports=["websocket"])
        raise AssertionError("a bad token was accepted")
    except socketio.exceptions.ConnectionError:
        pass
    assert reasons and reasons[0]["message"].startswith("authentication failed: "), reasons


if __name__ == "__main__":
    main()
