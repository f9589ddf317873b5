"""The shell commands of README.md and docs/*.md run on a fresh checkout (no ../shared).

Every fenced block with the info string ``bash`` is run as one bash script (``set -e``) in an
empty temporary folder, with ``pygad`` standing for ``python -P -m pygad`` and ``python`` for
the interpreter running the tests. A block whose preceding line is a marker comment such as
``<!-- needs: shared-data -->`` is skipped with that reason (``needs: cli:NAME`` runs once the
``pygad NAME`` subcommand exists). Other blocks (``python``, ``text``) are not run.

Smoke mode: the ``pygad`` stand-in appends small settings per subcommand (one seed, two
epochs, short streams, see ``SMOKE``); argparse keeps the last value of an option, so these
override the documented ones. Commands that train models are marked slow.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS = re.compile(r"<!--\s*needs:\s*(.*?)\s*-->")

# Appended to the arguments of each subcommand in smoke mode.
SMOKE = {
    "demo": ["--seeds", "1", "--vae-epochs", "2", "--quiet"],
    "evaluate": ["--seeds", "1", "--quiet"],  # --epochs is refused for the tree detector
    "augment": ["--epochs", "2", "--diffusion-epochs", "2", "--quiet"],
    "stream drift": ["--segment-len", "300", "--no-hst", "--quiet"],
    "stream detect": ["--quiet"],
}
SLOW = ("pygad demo", "pygad evaluate", "pygad augment", "pygad detect", "pygad stream drift")

PYGAD_STANDIN = """#!{python} -P
import runpy
import sys

SMOKE = {smoke!r}
argv = sys.argv[1:]
words = []
for a in argv[:2]:
    if a.startswith("-"):
        break
    words.append(a)
extra = SMOKE.get(" ".join(words), SMOKE.get(words[0], []) if words else [])
sys.argv = ["pygad", *argv, *extra]
runpy.run_module("pygad", run_name="__main__", alter_sys=True)
"""


def _blocks():
    """(file, line, needs, script) for every ```bash block of the documents."""
    out = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```bash":
                prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
                m = NEEDS.search(prev)
                needs = m.group(1) if m else ""
                j = i + 1
                while j < len(lines) and lines[j].strip() != "```":
                    j += 1
                out.append((path.relative_to(ROOT).as_posix(), i + 1, needs, "\n".join(lines[i + 1:j])))
                i = j
            i += 1
    return out


def _params():
    params = []
    for name, line, needs, script in _blocks():
        marks = [pytest.mark.slow] if any(s in script for s in SLOW) else []
        params.append(pytest.param(needs, script, id=f"{name}:{line}", marks=marks))
    return params


def _has_subcommand(name: str) -> bool:
    r = subprocess.run([sys.executable, "-P", "-m", "pygad", name, "--help"], capture_output=True, timeout=120)
    return r.returncode == 0


def test_blocks_found():
    blocks = _blocks()
    assert any(name == "README.md" for name, *_ in blocks)
    assert any(not needs for *_, needs, _ in blocks)


@pytest.mark.parametrize("needs, script", _params())
def test_docs_command(needs, script, tmp_path):
    for need in (n.strip() for n in needs.split(",") if n.strip()):
        if need.startswith("cli:"):
            sub = need[4:].split()[0]
            if not _has_subcommand(sub):
                pytest.skip(f"`pygad {sub}` is not available yet")
        else:
            pytest.skip(f"needs {need}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    standin = bin_dir / "pygad"
    standin.write_text(PYGAD_STANDIN.format(python=sys.executable, smoke=SMOKE))
    standin.chmod(0o755)
    py = bin_dir / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    py.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYGAD_DATA"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="Agg")
    r = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=work, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
