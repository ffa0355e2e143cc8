"""The README is short, true and runnable.

* It has at most 160 lines, and every relative link in it (and in docs/*.md and
  CONTRIBUTING.md) names a file that exists.
* Its target table equals the codec table: every codec, in listing order, with its
  transfer syntax UID(s) and whether it is lossless.
* Every fenced ``sh`` line that starts with ``dicompress`` runs and exits 0, and every fenced
  ``python`` block runs. The README's placeholders are real files: each command runs in a
  fresh temporary folder (all side by side) holding ``study/`` (CT_small.dcm and MR_small.dcm from pydicom's
  test files, found by `dicompress.samples.find_sample`), ``ct.dcm`` (CT_small.dcm) and
  ``site.key`` (a de-identification key); nothing in the command is substituted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dicompress.codecs import available_codecs
from dicompress.samples import find_sample

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
STUDY = ("CT_small.dcm", "MR_small.dcm")
UID_RE = re.compile(r"\b\d+(?:\.\d+){3,}\b")


def _fenced(language: str) -> list[str]:
    """The fenced blocks of `language` in the README, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", TEXT, flags=re.MULTILINE | re.DOTALL)


def _commands() -> list[str]:
    return [line.strip() for block in _fenced("sh") for line in block.splitlines()
            if line.strip().startswith("dicompress ")]


COMMANDS = _commands()
PYTHON_BLOCKS = _fenced("python")


def test_readme_fits_on_a_screen_or_two():
    lines = TEXT.count("\n")
    assert lines <= 160, f"README.md has {lines} lines; move the detail into docs/"


@pytest.mark.parametrize("page", [README, ROOT / "CONTRIBUTING.md",
                                  *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_exist(page):
    text = page.read_text(encoding="utf-8")
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)
             if not re.match(r"[a-z]+:", target) and not target.startswith("#")]
    missing = [link for link in links if not (page.parent / link).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_readme_links_every_docs_page():
    linked = set(re.findall(r"\]\(docs/([^)#\s]+)\)", TEXT))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def test_target_table_is_the_codec_table():
    table = TEXT.split("<!-- targets:", 1)[1].split("<!-- end targets -->", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0] != "`--to`":
            rows.append((cells[0].strip("`"), set(UID_RE.findall(cells[2])), cells[3]))
    expected = [(c.name, {c.transfer_syntax, *c.also_writes}, "yes" if c.lossless else "no")
                for c in available_codecs()]
    assert rows == expected


def test_readme_shows_commands():
    # the parsing above found what it should (a regex gone wrong would run nothing)
    assert len(COMMANDS) >= 10 and len(PYTHON_BLOCKS) >= 1


def _workdir(path: Path) -> Path:
    """A folder holding what the README's commands name: study/, ct.dcm, site.key."""
    study = path / "study"
    study.mkdir(parents=True)
    for name in STUDY:
        shutil.copy(find_sample(name), study / name)
    shutil.copy(find_sample("CT_small.dcm"), path / "ct.dcm")
    (path / "site.key").write_text("a long secret only the sending site keeps\n")
    return path


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every README command and Python block, each in its own fresh folder, run side by
    side (they are independent; most of their time is starting Python)."""
    jobs = [(c, ["bash", "-c", c]) for c in COMMANDS]
    jobs += [(b, [sys.executable, "-c", b]) for b in PYTHON_BLOCKS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {key: pool.submit(_run, argv, _workdir(tmp_path_factory.mktemp("readme")))
                   for key, argv in jobs}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, ran):
    done = ran[command]
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0])
def test_readme_python_runs(block, ran):
    done = ran[block]
    assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
