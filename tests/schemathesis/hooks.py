"""Schemathesis hooks for eventfeed: keep long-polls short.

`wait` may be up to 60 seconds, as documented; the fuzzer keeps its value but
caps it at one second, so a long-poll with nothing to return costs a second,
not a minute.
"""

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/api/events" or not case.query:
        return
    wait = case.query.get("wait")
    if isinstance(wait, int) and not isinstance(wait, bool) and wait > 1:
        case.query["wait"] = 1
    elif isinstance(wait, str) and wait.isdigit() and int(wait) > 1:
        case.query["wait"] = "1"
