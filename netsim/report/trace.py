"""Chrome / Perfetto trace (Trace Event Format, JSON object form) of a simulated iteration.

Processes are ranks (or pipeline stages), threads are the compute and communication streams,
spans are compute phases and collectives. Opens in ui.perfetto.dev or chrome://tracing.
"""

from __future__ import annotations

import json
from pathlib import Path

from netsim.system.result import Breakdown


def trace_events(bd: Breakdown) -> dict:
    events = []
    for pid, (proc, spans) in enumerate(bd.timeline.items()):
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": proc}})
        tids: dict[str, int] = {}
        for thread, name, start, dur, cat, *more in spans:
            if thread not in tids:
                tids[thread] = len(tids)
                events.append(
                    {"name": "thread_name", "ph": "M", "pid": pid, "tid": tids[thread], "args": {"name": thread}}
                )
            events.append(
                {
                    "name": name,
                    "cat": cat,
                    "ph": "X",
                    "pid": pid,
                    "tid": tids[thread],
                    "ts": start / 1e3,
                    "dur": dur / 1e3,
                    **({"args": more[0]} if more else {}),
                }
            )
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {k: v for k, v in bd.summary().items()}}


def write_trace(bd: Breakdown, path: str | Path) -> None:
    Path(path).write_text(json.dumps(trace_events(bd)))
