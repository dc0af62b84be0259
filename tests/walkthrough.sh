#!/usr/bin/env bash
# Runs the README's walkthrough exactly as written, and checks what it printed.
#
# The README marks its walkthrough code blocks in the fence's info string:
#   ```sh walkthrough server        the run command (terminal 1): started in the background
#   ```sh walkthrough               commands (terminal 2), run in order in one shell
#   ```sh walkthrough wait=TEXT     the same, then wait until the output shows TEXT
#   ```js walkthrough file=NAME     saved as NAME in that shell's directory
#   ```text walkthrough expect      lines the output must show, in this order
# Only four substitutions are made, so that the walkthrough can run beside
# anything else: `cargo run [-q --]` becomes the debug binary it builds
# (target/debug/eventfeed), the server
# listens on a free port instead of 3000 (`127.0.0.1:3000` becomes that port),
# it runs in a fresh temporary directory (so a fresh eventfeed.db), where
# `mktemp -d` also makes its directories, and `examples/schemas` (the type
# catalog, a path in the repository) becomes its path from there.
#
# Needs: bash, curl, Node 20+ with npm (the walkthrough installs
# socket.io-client itself). Cleans up after itself: the server, the clients
# and the temporary directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
README="$ROOT/README.md"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/eventfeed-walkthrough.XXXXXX")"
TRANSCRIPT="$WORK/transcript.txt"
SERVER_LOG="$WORK/server.log"
SERVER_PID=""
RUNNER_PID=""

say() { printf 'walkthrough: %s\n' "$*"; }

fail() {
    say "FAILED: $*" >&2
    if [ -s "$TRANSCRIPT" ]; then
        printf -- '--- output of the walkthrough commands ---\n%s\n' "$(cat "$TRANSCRIPT")" >&2
    fi
    if [ -s "$SERVER_LOG" ]; then
        printf -- '--- server log (last 40 lines) ---\n%s\n' "$(tail -n 40 "$SERVER_LOG")" >&2
    fi
    exit 1
}

# Each background command runs under `timeout`, which puts it in a process
# group of its own and passes a signal on to the whole group.
# TERM first (the server shuts down gracefully), then whatever is left of the group.
stop() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop "$RUNNER_PID"
    stop "$SERVER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The walkthrough starts from a clean environment: the embedded store, no token.
unset DATABASE_URL RUST_LOG TOKEN
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^EVENTFEED_' || true)
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR" "$WORK/blocks"

# `cargo run` builds the debug binary first; so does this, once, for every command.
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --bin eventfeed
EVENTFEED_CMD="\"$ROOT/target/debug/eventfeed\""
SERVER_START_TIMEOUT=60

# --- Extract the blocks: blocks/NN holds the text, blocks/NN.meta the info string.
awk -v dir="$WORK/blocks" '
    inblock && /^```[[:space:]]*$/ { inblock = 0; close(out); next }
    inblock { print > out; next }
    /^```[a-z]+ walkthrough/ {
        n++; inblock = 1; out = sprintf("%s/%02d", dir, n)
        print substr($0, 4) > (out ".meta"); close(out ".meta")
        printf "" > out
    }
' "$README"
shopt -s nullglob
metas=("$WORK"/blocks/*.meta)
[ "${#metas[@]}" -gt 0 ] || fail "README.md has no walkthrough blocks"

substitute() { # the substitutions; PORT must be known
    sed -e "s|cargo run -q --|$EVENTFEED_CMD|g" \
        -e "s|examples/schemas|$ROOT/examples/schemas|g" \
        -e "s|cargo run\\b|$EVENTFEED_CMD|g" \
        -e "s|127\\.0\\.0\\.1:3000|127.0.0.1:$PORT|g"
}

# --- Start the server from the `server` block.
server_block=""
for meta in "${metas[@]}"; do
    if [ "$(cat "$meta")" = "sh walkthrough server" ]; then
        server_block="$(cat "${meta%.meta}")"
        break
    fi
done
[ -n "$server_block" ] || fail "README.md has no 'sh walkthrough server' block"
[ "$(printf '%s\n' "$server_block" | wc -l)" -eq 1 ] || fail "the server block must be one command"
[ "$(grep -cxF -- "$server_block" "$README")" -ge 2 ] ||
    fail "the walkthrough's server command is not also the run command at the top of README.md"

say "starting: $server_block"
PORT=0
# `VAR=value exec binary`: the server replaces the shell, so it gets the signals.
server_cmd="$(printf '%s\n' "$server_block" | sed -e "s|cargo run\\b|exec $EVENTFEED_CMD|" -e "s|examples/schemas|$ROOT/examples/schemas|g")"
(
    cd "$WORK"
    export EVENTFEED_ADDR=127.0.0.1:0
    exec timeout 900 bash -c "$server_cmd"
) </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 $((SERVER_START_TIMEOUT * 10))); do
    PORT="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$SERVER_LOG" | head -n 1)"
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before listening"
    sleep 0.1
done
[ -n "$PORT" ] || fail "the server did not print 'listening on' within ${SERVER_START_TIMEOUT}s"
say "server listening on 127.0.0.1:$PORT"

# --- Build the commands of terminal 2 as one script, and the expectations.
RUNNER="$WORK/runner.sh"
EXPECT="$WORK/expect.txt"
: >"$EXPECT"
{
    echo 'set -euo pipefail'
    echo 'wait_for() {'
    echo '    for _ in $(seq 1 300); do grep -qF -- "$1" "$TRANSCRIPT" && return 0; sleep 0.1; done'
    echo '    echo "walkthrough: timed out waiting for the output to show: $1" >&2; return 1'
    echo '}'
} >"$RUNNER"
for meta in "${metas[@]}"; do
    info="$(cat "$meta")"
    block="${meta%.meta}"
    case "$info" in
        "sh walkthrough server") ;;
        "sh walkthrough")
            substitute <"$block" >>"$RUNNER"
            ;;
        "sh walkthrough wait="*)
            substitute <"$block" >>"$RUNNER"
            printf 'wait_for %q\n' "${info#sh walkthrough wait=}" >>"$RUNNER"
            ;;
        "js walkthrough file="*)
            file="${info#js walkthrough file=}"
            printf "cat > %q <<'WALKTHROUGH_EOF'\n" "$file" >>"$RUNNER"
            substitute <"$block" >>"$RUNNER"
            printf 'WALKTHROUGH_EOF\n' >>"$RUNNER"
            ;;
        "text walkthrough expect")
            cat "$block" >>"$EXPECT"
            ;;
        *) fail "unknown walkthrough block: \`\`\`$info" ;;
    esac
done
if grep -nE 'cargo run|(127\.0\.0\.1|localhost):3000' "$RUNNER"; then
    fail "a walkthrough command escaped the substitutions (above)"
fi
[ -s "$EXPECT" ] || fail "README.md has no 'text walkthrough expect' block"

# --- Run it, in the temporary directory, with its output in the transcript.
say "running the walkthrough's commands"
(
    cd "$WORK"
    export TRANSCRIPT
    exec timeout 300 bash "$RUNNER"
) </dev/null >"$TRANSCRIPT" 2>&1 &
RUNNER_PID=$!
status=0
wait "$RUNNER_PID" || status=$?
[ "$status" -eq 0 ] || fail "the walkthrough's commands failed (exit status $status)"

# --- Check what the client printed.
rest="$(cat "$TRANSCRIPT")"
while IFS= read -r line; do
    [ -n "$line" ] || continue
    case "$rest" in
        *"$line"*) rest="${rest#*"$line"}" ;;
        *) fail "expected this line (in order) in the output: $line" ;;
    esac
done <"$EXPECT"
dupes="$(grep -E ' cursor=[^ ]+$' "$TRANSCRIPT" | sort | uniq -d)"
[ -z "$dupes" ] || fail "an event was printed twice: $dupes"
grep -q '^refused:' "$TRANSCRIPT" && fail "the server refused the client"

printf -- '--- output ---\n%s\n--------------\n' "$(cat "$TRANSCRIPT")"
say "ok: the client saw the live event, and after reconnecting with its cursor the missed ones, once each"
