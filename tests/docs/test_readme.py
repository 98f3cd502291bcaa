"""The docs hold when followed literally. The README's `sh` blocks and its client example run as written
against a served instance (`profilekit serve` with its embedded worker, in a folder laid out as the
README assumes: .venv, data/ and ../shared beside it); only the port is the test's own. Every
`profilekit` command in the README and docs/ parses, and every file they name exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from tests.api.conftest import free_port
from tests.conftest import REPO, SHARED
from tests.workers.conftest import tiny_backbone_dir  # noqa: F401  (fixture)

README = (REPO / "README.md").read_text()
DOCS = {path: path.read_text() for path in [REPO / "README.md", REPO / "CONTRIBUTING.md",
                                            *sorted((REPO / "docs").rglob("*.md"))]}


def blocks(text: str, language: str | None) -> list[str]:
    """The code of the fenced blocks marked `language` (None: every block)."""
    found, current, marked = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, marked = [], line[3:].strip()
            else:
                if language is None or marked == language:
                    found.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return found


@pytest.fixture
def served(tmp_path, tiny_backbone_dir):  # noqa: F811
    """(checkout folder, port) of `profilekit serve` on the embedded defaults, started in the checkout."""
    checkout = tmp_path / "work" / "profilekit"
    checkout.mkdir(parents=True)
    (checkout / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "work" / "shared").symlink_to(SHARED)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
    env |= {"PROFILEKIT_BACKBONE_PATH": str(tiny_backbone_dir)}
    port, log = free_port(), tmp_path / "serve.log"
    process = subprocess.Popen([str(checkout / ".venv" / "bin" / "profilekit"), "serve", "--port", str(port)],
                               cwd=checkout, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while "profilekit ready" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "profilekit ready" in log.read_text(), log.read_text()[-3000:]
    yield checkout, port, env
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def literally(code: str, port: int) -> str:
    assert code.count("localhost:8000") >= 1
    return code.replace("localhost:8000", f"127.0.0.1:{port}")


def test_the_readme_runs_as_written_against_a_served_instance(served):
    checkout, port, env = served
    script = "set -euo pipefail\n" + "\n".join(literally(b, port) for b in blocks(README, "sh"))
    done = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout  # the job the README trains, waited for
    predicted = json.loads(done.stdout.splitlines()[-1])["results"]
    assert predicted[0]["label"] is not None and predicted[1]["label"] is None

    [client] = [b for b in blocks(README, "python") if "profilekit.client" in b]
    done = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", literally(client, port)], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "succeeded None" and len(lines) == 3


def prose(text: str) -> str:
    """The text outside fenced blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def commands(text: str) -> list[list[str]]:
    """Each `.venv/bin/profilekit …` command of a doc's code blocks, continuation lines joined."""
    code = "\n".join(blocks(text, None)).replace("\\\n", " ")
    found = []
    for line in code.splitlines():
        if ".venv/bin/profilekit " in line:
            command = line[line.index(".venv/bin/profilekit ") + len(".venv/bin/profilekit "):].split("#")[0]
            found.append(shlex.split(command.replace("$", "")))
    return found


@pytest.mark.parametrize("doc", list(DOCS), ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_of_the_docs_parses_and_every_file_they_name_exists(doc):
    from profilekit.cli import build_parser

    text = DOCS[doc]
    assert not re.search(r"(^\s*|=[\"']?)profilekit ", "\n".join(blocks(text, None)), re.M), \
        f"{doc.name}: write .venv/bin/profilekit in commands (profilekit is not on PATH without activating)"
    inline = [c for c in re.findall(r"`([^`]+)`", prose(text)) if re.match(r"(profilekit|python) \S+.* -", c, re.S)]
    assert inline == [], f"{doc.name}: write .venv/bin/profilekit or .venv/bin/python in commands"
    assert not re.search(r"(?<![\w/.])python -m ", text), \
        f"{doc.name}: write .venv/bin/python -m (the system python has neither torch nor profilekit)"
    for argv in commands(text):
        if argv[0] == "bench":
            continue  # bench/run.py's own flags
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"{doc.name}: `profilekit {' '.join(argv)}` does not parse") from exc
    for path in re.findall(r"(\.\./shared/[\w./-]+|docs/[\w./-]+\.(?:md|png|csv|json))", text):
        assert (REPO / path).exists(), f"{doc.name} names {path}, which does not exist"


def test_no_package_index_host_is_named():
    """pip installs from the index it is configured with; TORCH_INDEX_URL (empty by default) is the one
    way to point it elsewhere."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    named = [path for path in tracked if path.endswith((".md", ".toml", ".yaml", ".sh", ".cfg", ".txt", "Makefile",
                                                        "Dockerfile"))
             and re.search(r"pypi\.org|pytorch\.org|files\.pythonhosted|--index-url\s+http",
                           (REPO / path).read_text(errors="ignore"))]
    assert named == []
    assert re.search(r"^TORCH_INDEX_URL \?=\s*$", (REPO / "Makefile").read_text(), re.M)
