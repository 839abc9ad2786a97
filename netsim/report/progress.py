"""Progress on stderr for long jobs (run, sweeps, studies, analyze)."""

from __future__ import annotations


def eta_printer(label: str = "sweep", after_s: float = 0.0):
    """A rich progress bar with ETA on stderr, titled `label`; it appears only once `after_s`
    seconds have passed, so a job that ends sooner prints nothing."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    state = {"t0": time.monotonic()}

    def update(done: int, total: int):
        if "task" not in state:
            if time.monotonic() - state["t0"] < after_s and done < total:
                return
            prog.start()
            state["task"] = prog.add_task(label, total=total)
        prog.update(state["task"], completed=done)
        if done == total:
            prog.stop()

    return update
