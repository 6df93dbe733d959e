"""``--device cuda``: the child prepares CUDA before the guard, a codec's own ctypes stays
refused. The end-to-end tests need an NVIDIA GPU and a CUDA build of torch; elsewhere
they skip with that reason, and the CPU tests check the order of the steps."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from aicodec.clips import Clip, load_clip
from aicodec.sandbox.execute import run_candidate
from aicodec.sandbox.isolation import gpu_devices
from aicodec.settings import Settings
from tests.test_cli import aicodec

torch = pytest.importorskip("torch", reason="torch is an optional extra (aicodec[torch])")
CODECS = Path(__file__).parent / "codecs"
HAS_GPU = bool(gpu_devices()) and torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU with a CUDA build of torch here")

OWN_CTYPES = """
import ctypes

import torch


def encode(frames, quality):
    return bytes(ctypes.c_char_p(b"escape").value)


def decode(bitstream):
    raise ValueError("not reached")
"""


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip(None, Settings(), count=4)


@pytest.mark.skipif(HAS_GPU, reason="checks the CPU-only path; this machine has a GPU")
def test_cuda_is_prepared_before_any_codec_code_runs(clip: Clip) -> None:
    run = run_candidate(OWN_CTYPES, clip, [50], Settings(device="cuda"))
    encode = run.points[0].encode
    # the CUDA step failed (no GPU here) before the codec's module body could try ctypes
    assert (encode.status, encode.stage) == ("error", "setup"), encode.describe()
    assert "torch sees no CUDA device" in encode.message


def test_a_codecs_own_ctypes_stays_refused_on_the_cpu(clip: Clip) -> None:
    encode = run_candidate(OWN_CTYPES, clip, [50], Settings(device="cpu")).points[0].encode
    assert encode.status == "refused" and "ctypes" in encode.message, encode.describe()


@needs_gpu
def test_a_codecs_own_ctypes_stays_refused_with_cuda(clip: Clip) -> None:
    encode = run_candidate(OWN_CTYPES, clip, [50], Settings(device="cuda")).points[0].encode
    assert encode.status == "refused" and "ctypes" in encode.message, encode.describe()


@needs_gpu
def test_a_codec_computes_on_the_gpu_in_the_sandbox(clip: Clip) -> None:
    run = run_candidate(
        (CODECS / "torch_cuda_pool.py").read_text(), clip, [30, 70], Settings(device="cuda")
    )
    assert run.ok, run.first_error()
    for point in run.points:
        assert struct.unpack_from("<B", point.bitstream or b"")[0] == 1  # pooled on CUDA
        assert np.array_equal(point.decoded.u, clip.frames.u)


@needs_gpu
def test_the_cli_runs_a_cuda_codec(tmp_path: Path) -> None:
    codec, db = str(CODECS / "torch_cuda_pool.py"), str(tmp_path / "t.db")
    result = aicodec(
        "run", codec, "--device", "cuda", "--frames", "4", "--qualities", "50", "--db", db, "--json"
    )
    assert result.returncode == 0, result.stderr
    point = json.loads(result.stdout)["points"][0]
    assert 20 < point["psnr_y"] < 45 and point["bytes"] > 0
    on_cpu = aicodec(
        "run", codec, "--device", "cpu", "--frames", "4", "--qualities", "50", "--db", db
    )
    assert on_cpu.returncode != 0 and "Traceback" not in on_cpu.stderr
