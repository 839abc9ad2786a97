"""The README's command examples, run as a user would copy them: each must exit as its shown output
implies (0; 1 where it shows FAIL; 2 where it shows an error) and print every number the README
shows for it, so the README cannot drift from the commands' behaviour."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# `collect` trains models with PyTorch and `analyze` reads what it wrote: minutes each, and
# tests/codecs runs both on small inputs. Every other example runs here.
NOT_RUN = {"collect": "PyTorch training, covered by tests/codecs", "analyze": "needs collect's tensors"}
NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")
WALL_CLOCK = re.compile(r"(solved )?in [\d.]+ s\b")
JSON_PAIR = re.compile(r'"(\w+)":\s*([-+\w.]+)')


@dataclass
class Example:
    line: int
    commands: list[str]
    shown: list[str] = field(default_factory=list)  # the output the README prints under the command

    @property
    def expected_rc(self) -> int:
        text = "\n".join(self.shown)
        return 2 if "netsim: error" in text else 1 if re.search(r"^FAIL", text, re.M) else 0


def readme_examples() -> list[Example]:
    """Code blocks with `$ netsim ...` (prompt style: the rest of the block is its output) or bash
    blocks with `netsim ...` lines (run in order, no output shown)."""
    out, block, start, lang = [], None, 0, ""
    for i, raw in enumerate((REPO / "README.md").read_text().splitlines(), 1):
        s = raw.strip()
        if s.startswith("```"):
            if block is None:
                block, start, lang = [], i, s[3:]
                continue
            prompts = [b for b in block if b.startswith("$ netsim ")]
            if prompts:
                out.append(Example(start, [prompts[0][2:]], [b for b in block[1:] if b.strip() != "..."]))
            elif lang == "bash" and any(b.startswith("netsim ") for b in block):
                out.append(Example(start, [b.split("  #")[0].strip() for b in block if b.startswith("netsim ")]))
            block = None
        elif block is not None:
            block.append(s)
    return out


def _runnable(ex: Example) -> bool:
    return not any(shlex.split(c)[1] in NOT_RUN for c in ex.commands)


EXAMPLES = [e for e in readme_examples() if _runnable(e)]


def test_readme_has_examples_of_every_main_command():
    verbs = {shlex.split(c)[1] for e in readme_examples() for c in e.commands}
    assert {"run", "bench-collective", "validate", "sweep", "plot", "optimize", "study"} <= verbs


def _workdir(tmp_path: Path) -> Path:
    """A fresh folder with the repository's data beside it and ../shared where the README expects it."""
    work = tmp_path / "work"
    work.mkdir()
    for d in ("topologies", "workloads", "sweeps", "calibration", "docs"):
        (work / d).symlink_to(REPO / d)
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED)
    return work


def _check_shown(ex: Example, printed: str) -> None:
    shown = "\n".join(ex.shown)
    if "--json" in ex.commands[-1]:
        got = json.loads(printed)
        for key, value in JSON_PAIR.findall(shown):
            want = {"true": True, "false": False}.get(value, value)
            if isinstance(want, bool):
                assert got[key] is want, key
            else:  # the README rounds to three significant digits
                assert got[key] == pytest.approx(float(want), rel=5e-3, abs=0.5), key
        return
    shown = WALL_CLOCK.sub("", shown)  # how long a solver took is the machine's, not the model's
    missing = [n for n in NUMBER.findall(shown) if n not in printed]
    assert not missing, f"README line {ex.line}: shown numbers not in the output: {missing}\n{printed}"


@pytest.mark.parametrize("ex", EXAMPLES, ids=[f"L{e.line}" for e in EXAMPLES])
def test_readme_example_runs_as_shown(ex: Example, tmp_path):
    if any("../shared" in c for c in ex.commands) and not SHARED.exists():
        pytest.skip("../shared is absent")
    work = _workdir(tmp_path)
    exe = shutil.which("netsim") or str(Path(sys.executable).with_name("netsim"))
    env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1"}
    for cmd in ex.commands:
        argv = [exe, *shlex.split(cmd)[1:]]
        res = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in res.stderr, res.stderr
        assert res.returncode == ex.expected_rc, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    _check_shown(ex, res.stdout + res.stderr)
