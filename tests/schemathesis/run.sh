#!/usr/bin/env bash
# Schemathesis against a running server, on the embedded store and on a fresh
# PostgreSQL database: every answer conforms to /api/openapi.json, no 5xx.
# Usage: tests/schemathesis/run.sh <eventfeed binary> <schemathesis binary>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "$1")"
schemathesis="$(realpath "$2")"
export EVENTFEED_JWT_SECRET="schemathesis-secret-$$-$RANDOM"
export EVENTFEED_DRAIN=0
work="$(mktemp -d)"
db="ef_schemathesis_$$"
server=""

cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts the server with the given flags; sets $server and $base.
start() {
    "$bin" --addr 127.0.0.1:0 "$@" >"$work/stdout" 2>"$work/stderr" &
    server=$!
    for _ in $(seq 1 100); do
        base="$(sed -n 's/^listening on //p' "$work/stdout")"
        [ -n "$base" ] && return 0
        sleep 0.1
    done
    echo "the server did not start:" >&2
    cat "$work/stderr" >&2
    return 1
}

fuzz() {
    local name="$1"
    shift
    echo "== schemathesis on $name"
    start "$@"
    # admin as well, so that GET /api/stats is answered, not only refused.
    token="$("$bin" token --tenant acme --user fuzzer --roles publisher,auditor,admin)"
    if ! (cd "$here" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here" "$schemathesis" --config-file "$here/schemathesis.toml" run \
        "http://$base/api/openapi.json" -H "Authorization: Bearer $token" --no-color); then
        echo "== the server's warnings and errors on $name:" >&2
        grep -E "WARN|ERROR" "$work/stderr" | tail -40 >&2 || true
        return 1
    fi
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
}

fuzz "the embedded store" --data-file "$work/eventfeed.db"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
fuzz "PostgreSQL" --database-url "postgres://postgres@127.0.0.1:5432/$db"
