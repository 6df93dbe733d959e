"""A/B of one of the hybrid seed's coding tools: BD-rate of the seed with some PARAMS changed
against the seed with others changed (or as it is), side by side on the same clips.

Run as ``python benchmarks/bench_hybrid_tools.py [--set k=v ...] [--base k=v ...]
[--clips builtin,foreman] [--frames 30] [--workers 2] [--json]``. Both variants are the same
file (``baselines/seeds/hybrid.py``), loaded in process with one BLAS thread; ``--set``
overrides its PARAMS for the test variant, ``--base`` for the reference (each starts from the
seed's own PARAMS). ``make bench`` runs it with the seed's defaults against the seed without
its picture QPs from temporal propagation (the fixed QP offsets of before in their place).
Every clip is coded at the lab's qualities; PSNR-Y and kbit/s come from the lab's own metric
functions, the BD-rate (percent, negative: the test variant needs fewer bits) from
``aicodec.scoring.bdrate``. Clips are the built-in one and the ``../shared/media`` windows of
``bench_seeds.py`` (those absent are skipped with a note), or any ``builtin:NAME`` (from its
first frame). The encoder's output is checked against the decoder's on every point. Encode
seconds are summed over the qualities.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy: one thread per job, as in the sandbox

import argparse  # noqa: E402
import ast  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hybrid_speed import load_module  # noqa: E402
from bench_seeds import CLIPS, MEDIA_DIR, SEEDS_DIR, ClipSpec, load_spec  # noqa: E402

from aicodec.candidates.contract import DEFAULT_QUALITIES  # noqa: E402
from aicodec.clips import load_clip  # noqa: E402
from aicodec.scoring.bdrate import RDPoint, bd_rate  # noqa: E402
from aicodec.scoring.metrics import bitrate_kbps, plane_mse, sequence_psnr  # noqa: E402
from aicodec.settings import Settings  # noqa: E402

SEED = SEEDS_DIR / "hybrid.py"


def overrides(items: list[str]) -> dict[str, Any]:
    """PARAMS overrides from ``name=value`` items (values as Python literals)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"bench_hybrid_tools: expected name=value, got {item!r}")
        out[name.strip()] = ast.literal_eval(text.strip())
    return out


def load_seed(params: dict[str, Any]) -> ModuleType:
    """The seed as a fresh module with its PARAMS overridden (unknown names are refused)."""
    module = load_module(SEED, "hybrid_tools_seed")
    unknown = sorted(set(params) - set(module.PARAMS))
    if unknown:
        raise SystemExit(f"bench_hybrid_tools: not a PARAMS name: {', '.join(unknown)}")
    module.PARAMS.update(params)
    return module


def code_point(job: tuple[str, int | None, dict[str, Any], int]) -> dict[str, Any]:
    """One clip at one quality with one variant: kbit/s, PSNR-Y (dB), encode seconds."""
    key, frames, params, quality = job
    if key.startswith("builtin:"):
        clip = load_clip(key, Settings(), count=frames)
    else:
        clip = load_spec(next(s for s in CLIPS if s.key == key), MEDIA_DIR, Settings(), frames)
    seed = load_seed(params)
    started = time.perf_counter()
    bitstream, recon = seed._encode(clip.frames, quality)
    seconds = time.perf_counter() - started
    decoded = seed.decode(bitstream)
    if not all(np.array_equal(a, b) for a, b in zip(recon, decoded[:3], strict=True)):
        raise SystemExit(f"bench_hybrid_tools: encoder and decoder differ on {key} q{quality}")
    source = clip.frames
    mses = plane_mse(source.y, decoded[0])
    count = source.y.shape[0]
    return {
        "kbps": bitrate_kbps(len(bitstream), count, float(source.fps)),
        "psnr_y": sequence_psnr(mses),
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], help="test variant: name=value")
    parser.add_argument("--base", action="append", default=[], help="reference: name=value")
    parser.add_argument("--clips", default=",".join(s.key for s in CLIPS))
    parser.add_argument("--frames", type=int, default=None, help="cut every window to N frames")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    test, base = overrides(args.set), overrides(args.base)
    load_seed({**base, **test})  # refuse unknown names before any work
    if test == base:
        raise SystemExit("bench_hybrid_tools: --set and --base give the same variant")
    qualities = list(DEFAULT_QUALITIES)
    keys = [k.strip() for k in args.clips.split(",") if k.strip()]
    notes, jobs = [], []
    for key in keys:
        spec = next((s for s in CLIPS if s.key == key), None)
        if spec is None and key.startswith("builtin:"):
            spec = ClipSpec(key, None, 0, None)
        if spec is None:
            raise SystemExit(f"bench_hybrid_tools: unknown clip {key!r}")
        if spec.file is not None and not (MEDIA_DIR / spec.file).exists():
            notes.append(f"{key}: skipped, {MEDIA_DIR / spec.file} is absent")
            continue
        for variant, params in (("base", base), ("test", test)):
            jobs += [((key, args.frames, params, q), (key, variant, q)) for q in qualities]
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        results = list(pool.map(code_point, [job for job, _ in jobs]))
    points: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (_, label), result in zip(jobs, results, strict=True):
        points.setdefault(label[:2], []).append(result)
    rows = []
    for key in dict.fromkeys(label[0] for _, label in jobs):
        curves = {
            v: [RDPoint(p["kbps"], p["psnr_y"]) for p in points[(key, v)]] for v in ("base", "test")
        }
        rows.append(
            {
                "clip": key,
                "bd_rate_percent": bd_rate(curves["base"], curves["test"]),
                "base_encode_s": sum(p["seconds"] for p in points[(key, "base")]),
                "test_encode_s": sum(p["seconds"] for p in points[(key, "test")]),
                "base_points": points[(key, "base")],
                "test_points": points[(key, "test")],
            }
        )
    mean = float(np.mean([r["bd_rate_percent"] for r in rows])) if rows else None
    summary = {"test": test, "base": base, "qualities": qualities, "frames": args.frames}
    if args.json:
        print(json.dumps({**summary, "clips": rows, "mean_bd_rate_percent": mean, "notes": notes}))
        return 0
    out = Console()
    table = Table(title=f"hybrid {test or 'as it is'} against {base or 'the seed as it is'}")
    for column in ("clip", "BD-rate (PSNR-Y)", "encode s base", "encode s test"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["clip"],
            f"{r['bd_rate_percent']:+.2f} %",
            f"{r['base_encode_s']:.1f}",
            f"{r['test_encode_s']:.1f}",
        )
    if mean is not None:
        table.add_row("mean", f"{mean:+.2f} %", "", "")
    out.print(table)
    for note in notes:
        out.print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
