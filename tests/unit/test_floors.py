"""The house's floors (docs/architecture.md): no import runs back up a floor or sideways into another
room of the same floor, and the ground floor — what the API needs to onboard and queue — loads no
torch, checked in fresh processes."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METHOD_DECLARATIONS = {"registry", "config"}  # torch-free: names, configs and presets of every method

# (level, room) of each part; a module may import its own room and any lower level
FLOORS = [
    ("profilekit.settings", 0, "ground"), ("profilekit.errors", 0, "ground"), ("profilekit.store", 0, "ground"),
    ("profilekit.data", 0, "ground"), ("profilekit.jobs", 0, "ground"),
    ("profilekit.backbone", 1, "backbone"), ("profilekit.pool", 1, "pool"),
    ("profilekit.methods", 2, "methods"),
    ("profilekit.engine", 3, "engine"),
    ("profilekit.training", 4, "training"), ("profilekit.serving", 4, "serving"),
    ("profilekit.runner", 5, "workers"), ("workers", 5, "workers"), ("profilekit.evaluation", 5, "evaluation"),
    ("profilekit.api", 5, "api"), ("profilekit.client", 5, "client"),
    ("bench", 6, "bench"),
    ("profilekit.cli", 7, "cli"),
]


def floor_of(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if parts[:2] == ["profilekit", "methods"]:  # a method's declaration (its folder's __init__ and config)
        if len(parts) == 2 or parts[2] in METHOD_DECLARATIONS or (len(parts) == 3 and "." not in parts[2]
                                                                   and (REPO / "platform" / Path(*parts)).is_dir()):
            return 0, "ground"
        if len(parts) == 4 and parts[3] == "config":
            return 0, "ground"
    if module == "profilekit":
        return 0, "ground"
    for prefix, level, room in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            return level, room
    raise AssertionError(f"{module} stands on no floor")


def modules():
    for root in (REPO / "platform" / "profilekit", REPO / "workers", REPO / "bench"):
        base = root.parent
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):  # lazy imports inside functions count too
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {name for name in found if name.split(".")[0] in ("profilekit", "workers", "bench")}


def test_the_registry_is_the_one_import_by_name():
    """methods/registry.py (ground floor) imports a method's layer.py and artifact.py by name when a state is
    first made or loaded: the one arrow up, declared in docs/architecture.md. Nothing else imports by name,
    so the check above sees every other arrow."""
    by_name = [str(path.relative_to(REPO)) for _, path in modules()
               if re.search(r"\bimport_module\(|__import__\(", path.read_text())]
    assert by_name == ["platform/profilekit/methods/registry.py"]


def test_no_import_runs_back_up_or_sideways():
    wrong = []
    for module, path in modules():
        level, room = floor_of(module)
        for name in imports(path):
            if name.split(".")[-1][:1].isupper() or name.split(".")[-1] not in _module_names(name):
                name = name.rsplit(".", 1)[0]  # `from a.b import Name`: the module is a.b
            other_level, other_room = floor_of(name)
            if other_level > level or (other_level == level and other_room != room):
                wrong.append(f"{module} ({room}, {level}) imports {name} ({other_room}, {other_level})")
    assert not wrong, "\n".join(wrong)


def _module_names(name: str) -> set[str]:
    """The last part of `name` when it is a module or package of the repository, else empty."""
    parts = name.split(".")
    base = REPO / "platform" if parts[0] == "profilekit" else REPO
    path = base.joinpath(*parts)
    return {parts[-1]} if path.with_suffix(".py").is_file() or path.is_dir() else set()


def run_fresh(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")}
    env |= {"PROFILEKIT_DATA_DIR": str(tmp_path), "PROFILEKIT_PRELOAD_MODEL": "false",
            "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=REPO)


API_WITHOUT_TORCH = r'''
import json, sys
from fastapi.testclient import TestClient
from profilekit.api.app import create_app
from profilekit.api.auth import create_key
from profilekit.settings import get_settings
from profilekit.store import make_engine, make_session_factory
from profilekit.store.migrate import upgrade

settings = get_settings()
upgrade(settings.resolved_database_url)
with make_session_factory(make_engine(settings.resolved_database_url))() as session:
    key = create_key(session, tenant="acme", role="client")
auth = {"Authorization": f"Bearer {key}"}
rows = "\n".join(json.dumps({"text": f"news {i}", "category": "A" if i % 2 else "B", "author": "ann"})
                 for i in range(6))
with TestClient(create_app(settings)) as client:
    codes = [client.post("/v1/profiles", json={"external_id": "bob"}, headers=auth).status_code]
    bob = client.get("/v1/profiles", headers=auth).json()["items"][0]["id"]
    codes.append(client.post(f"/v1/profiles/{bob}/examples", content="text,category\nhi,A\nho,B\nhu,A\n",
                             headers=auth | {"Content-Type": "text/csv"}).status_code)
    codes.append(client.post("/v1/datasets", content=rows,
                             headers=auth | {"Content-Type": "application/x-ndjson"}).status_code)
    job = client.post("/v1/jobs", json={"profile_ids": [bob], "method": "xpeft_hard", "train": {"min_rows": 3}},
                      headers=auth)
    job_id = job.json()["id"]
    codes += [job.status_code, client.get(f"/v1/jobs/{job_id}", headers=auth).status_code,
              client.get("/v1/jobs", headers=auth).status_code, client.get("/readyz").status_code,
              client.get("/metrics").status_code]
    lamp = {part: (f"{part}.json", open(f"tests/data/lamp/LaMP_2_dev_{part}.json", "rb").read())
            for part in ("questions", "outputs")}
    codes += [client.get(f"/v1/jobs/{job_id}/events", headers=auth).status_code,
              client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code,
              client.get(f"/v1/profiles/{bob}/artifacts", headers=auth).status_code,
              client.post("/v1/datasets?min_rows=1", files=lamp, headers=auth).status_code,
              client.get("/v1/pools", headers=auth).status_code,
              client.delete(f"/v1/profiles/{bob}", headers=auth).status_code]
print(codes, "torch" in sys.modules)
'''


def test_the_api_onboards_and_queues_jobs_without_importing_torch(tmp_path):
    done = run_fresh(API_WITHOUT_TORCH, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "False", done.stdout
    assert done.stdout.startswith("[201, 200, 200, 202, 200, 200, 200, 200, 200, 200, 200, 200, 200, 204]"), done.stdout


def test_the_client_imports_no_torch(tmp_path):
    done = run_fresh("import sys\nfrom profilekit.client import AsyncClient, Client\nprint('torch' in sys.modules)",
                     tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False"], done.stdout


@pytest.mark.parametrize("argv", [["keys", "create", "--tenant", "acme"], ["keys", "list"], ["jobs"], ["profiles"],
                                  ["db", "upgrade"], ["pools", "list"], ["pools", "set-default", "random"]])
def test_store_commands_run_without_importing_torch(tmp_path, argv):
    done = run_fresh(f"import sys\nfrom profilekit.cli import main\ncode = main({argv!r})\n"
                     "print(code, 'torch' in sys.modules)", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout
