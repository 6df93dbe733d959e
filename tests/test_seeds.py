"""The seed codecs in baselines/seeds: round trips, determinism, rate-distortion, tunables."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aicodec.bdrate import RDPoint, bd_rate
from aicodec.clips import Frames, load_clip
from aicodec.metrics import compare
from aicodec.settings import Settings

SEEDS = Path(__file__).resolve().parents[1] / "baselines" / "seeds"
SEED_NAMES = ("intra_dct", "motion_dct")
QUALITIES = (20, 40, 60, 80)


def load_seed(name: str) -> ModuleType:
    """Import a seed file as a fresh module (each call gets its own PARAMS)."""
    path = SEEDS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"seed_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crop(frames: Frames, width: int, height: int, x: int, y: int) -> Frames:
    """A window of a clip (x, y, width, height even), as contiguous planes."""
    cx, cy, cw, ch = x // 2, y // 2, width // 2, height // 2
    return Frames(
        np.ascontiguousarray(frames.y[:, y : y + height, x : x + width]),
        np.ascontiguousarray(frames.u[:, cy : cy + ch, cx : cx + cw]),
        np.ascontiguousarray(frames.v[:, cy : cy + ch, cx : cx + cw]),
        frames.fps,
    )


def as_frames(decoded: tuple[np.ndarray, np.ndarray, np.ndarray], fps) -> Frames:
    return Frames(decoded[0], decoded[1], decoded[2], fps)


@pytest.fixture(scope="module")
def clip8() -> Frames:
    """Eight frames of the built-in 352x288 clip."""
    return load_clip(None, Settings(), count=8).frames


@pytest.fixture(scope="module")
def small(clip8: Frames) -> Frames:
    """100x60 from the middle of the clip: even, but not a multiple of any block size."""
    return crop(clip8, 100, 60, 118, 90)


@pytest.fixture(scope="module")
def curves(clip8: Frames) -> dict[str, list[tuple[int, float]]]:
    """(bytes, PSNR-Y) of each seed at each quality on the eight frames."""
    out = {}
    for name in SEED_NAMES:
        seed = load_seed(name)
        points = []
        for quality in QUALITIES:
            bitstream = seed.encode(clip8, quality)
            decoded = as_frames(seed.decode(bitstream), clip8.fps)
            points.append((len(bitstream), compare(clip8, decoded, settings=Settings()).psnr_y))
        out[name] = points
    return out


@pytest.mark.parametrize("name", SEED_NAMES)
def test_round_trip_shapes_and_determinism(name: str, small: Frames) -> None:
    seed = load_seed(name)
    for quality in (0, 50, 100):
        bitstream = seed.encode(small, quality)
        assert isinstance(bitstream, bytes)
        first = seed.decode(bitstream)
        second = load_seed(name).decode(bytes(bitstream))
        assert len(first) == 3
        for plane, source, again in zip(first, (small.y, small.u, small.v), second, strict=True):
            assert plane.dtype == np.uint8
            assert plane.shape == source.shape
            assert np.array_equal(plane, again)
        quality_report = compare(small, as_frames(first, small.fps), settings=Settings())
        assert quality_report.psnr_y > 20.0


@pytest.mark.parametrize("name", SEED_NAMES)
def test_encoding_is_deterministic(name: str, small: Frames) -> None:
    assert load_seed(name).encode(small, 40) == load_seed(name).encode(small, 40)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_bytes_and_psnr_grow_with_quality(name: str, curves) -> None:
    sizes = [size for size, _ in curves[name]]
    psnrs = [psnr for _, psnr in curves[name]]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert np.all(np.diff(psnrs) > 0), psnrs
    assert 26.0 < psnrs[0] < 34.0, psnrs
    assert psnrs[-1] > 40.0, psnrs


VARIANTS = [
    ("intra_dct", {"block": 4}),
    ("intra_dct", {"block": 16, "entropy": "zlib"}),
    ("motion_dct", {"block": 4, "subpel": 0}),
    ("motion_dct", {"subpel": 1, "intra_period": 3, "entropy": "zlib", "decimate": 0}),
    ("motion_dct", {"search": 1, "mv_lambda": 0.0}),
]


@pytest.mark.parametrize(("name", "params"), VARIANTS)
def test_other_params_round_trip(name: str, params: dict, small: Frames) -> None:
    seed = load_seed(name)
    for key, value in params.items():
        allowed = seed.PARAM_RANGES[key]
        assert value in allowed if isinstance(allowed, list) else allowed[0] <= value <= allowed[1]
    seed.PARAMS.update(params)
    bitstream = seed.encode(small, 50)
    decoded = seed.decode(bitstream)
    assert np.array_equal(decoded[0], load_seed(name).decode(bitstream)[0])
    assert compare(small, as_frames(decoded, small.fps), settings=Settings()).psnr_y > 30.0


def test_motion_beats_intra(curves, clip8: Frames) -> None:
    seconds = clip8.count / float(clip8.fps)

    def rd(name: str) -> list[RDPoint]:
        return [RDPoint(8 * size / seconds / 1000, psnr) for size, psnr in curves[name]]

    rate = bd_rate(rd("intra_dct"), rd("motion_dct"))
    assert rate < -25.0, f"motion_dct BD-rate against intra_dct is {rate:.1f}%"


@pytest.mark.parametrize("name", SEED_NAMES)
def test_params_are_literals_within_their_ranges(name: str) -> None:
    tree = ast.parse((SEEDS / f"{name}.py").read_text())
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("PARAMS", "PARAM_RANGES"):
                literals[target.id] = ast.literal_eval(node.value)
    params, ranges = literals["PARAMS"], literals["PARAM_RANGES"]
    assert params and set(params) == set(ranges)
    module = load_seed(name)
    assert module.PARAMS == params and module.PARAM_RANGES == ranges
    for key, value in params.items():
        allowed = ranges[key]
        if isinstance(allowed, list):
            assert value in allowed, (key, value, allowed)
        else:
            low, high = allowed
            assert low <= value <= high, (key, value, allowed)
            if isinstance(low, int) and isinstance(high, int):
                assert isinstance(value, int), (key, value)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_imports_only_allowed_modules(name: str) -> None:
    from aicodec.candidates.contract import ALLOWED_IMPORTS

    tree = ast.parse((SEEDS / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        assert all(root in ALLOWED_IMPORTS for root in roots), roots
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__"), node.attr
        if isinstance(node, ast.Name):
            assert node.id not in ("eval", "exec", "compile", "open", "getattr", "__import__")
