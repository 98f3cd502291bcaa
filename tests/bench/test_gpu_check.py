"""bench/gpu_check.sh on a machine without a GPU: it says so and exits 0, having run and written nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: run bench/gpu_check.sh itself (minutes)")
def test_the_gpu_check_says_there_is_no_gpu_and_exits_0(tmp_path):
    done = subprocess.run([str(REPO / "bench" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PY": sys.executable, "OUT": str(tmp_path / "out")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("no GPU:")
    assert not (tmp_path / "out").exists()
