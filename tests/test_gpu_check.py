"""benchmarks/gpu_check.py on a machine without CUDA: a clear message and status 2, nothing measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: run the check itself")
def test_without_cuda_says_so():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "no CUDA GPU is visible" in proc.stderr and "nothing was measured" in proc.stderr
    assert not (ROOT / "benchmarks" / "results" / "gpu_check.json").exists()
