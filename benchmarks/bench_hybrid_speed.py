"""Hybrid seed speed, old against new: encode and decode frames/s of ``hybrid.py`` at a base
revision and in the working tree, side by side, and whether their outputs are identical.

Run: ``.venv/bin/python benchmarks/bench_hybrid_speed.py [--base REV] [--clips builtin,tears]
[--frames 30] [--qualities 50] [--repeats 3] [--threads 1] [--json]``.

The old codec is ``git show REV:baselines/seeds/hybrid.py``; by default REV is the version
before the file's latest change, seen from the merge-base of HEAD with ``main``: the newest
commit there that touched the file and whose copy differs from the working tree's. Both
codecs run in this process, not through the sandbox (no isolation, no seccomp, no copying of
frames), with numpy/OpenBLAS/OpenMP limited to ``--threads`` threads as the sandbox limits
them (its default is 1). For each clip and quality the old and the new codec run alternately,
``--repeats`` times each, and the table gives the median times as frames per second; the
speed ratio is new fps / old fps (wall clock; ``--json`` adds the CPU seconds of every run,
steadier on a shared machine). "same bits" says whether the two bitstreams are
byte-identical, "same frames" whether the two decoders' outputs are. A first, untimed call
of each codec on two frames warms them up.

Clips: ``builtin`` (builtin:default, 352x288) and ``tears`` (Tears of Steel, 800x332, from
``../shared/media``, at its README's window), each cut to ``--frames``. A clip whose file is
absent is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import sys

# before numpy is imported: the sandbox runs codecs with this many BLAS/OpenMP threads
if __name__ == "__main__":
    _threads = "1"
    for _index, _arg in enumerate(sys.argv):
        if _arg == "--threads" and _index + 1 < len(sys.argv):
            _threads = sys.argv[_index + 1]
        elif _arg.startswith("--threads="):
            _threads = _arg.split("=", 1)[1]
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads

import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import numpy as np  # noqa: E402

from aicodec.clips import load_clip  # noqa: E402
from aicodec.clips.frames import Frames  # noqa: E402
from aicodec.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED = "baselines/seeds/hybrid.py"
MEDIA = ROOT.parent / "shared" / "media"
# key: (file in MEDIA or None for builtin:default, start)
CLIPS = {
    "builtin": (None, 0),
    "tears": ("tears_of_steel_battle_800x332.webm", 605),
}


def git(*args: str) -> str:
    """Output of a git command in the repository (stripped)."""
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def default_base() -> str:
    """The commit holding the version of the seed before its latest change (see the module
    docstring): from the merge-base of HEAD and main (HEAD when there is no main), the newest
    commit that touched the file and whose copy differs from the working tree's."""
    try:
        start = git("merge-base", "HEAD", "main")
    except subprocess.CalledProcessError:
        start = git("rev-parse", "HEAD")
    current = (ROOT / SEED).read_bytes()
    for commit in git("log", "--format=%H", start, "--", SEED).split():
        if git_file(commit) != current:
            return commit
    raise SystemExit(f"no earlier version of {SEED} differs from the working tree")


def git_file(rev: str) -> bytes:
    """The seed's bytes at a revision."""
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{SEED}"], capture_output=True, check=True
    ).stdout


def load_module(path: Path, name: str) -> ModuleType:
    """A codec file as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Timing:
    """Encode and decode seconds of the runs of one codec on one clip at one quality."""

    encode: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)
    encode_cpu: list[float] = field(default_factory=list)  # process CPU seconds
    decode_cpu: list[float] = field(default_factory=list)
    bitstream: bytes = b""
    decoded: str = ""

    def fps(self, frames: int, kind: str) -> float:
        """Median frames per second of the encode or decode runs."""
        return frames / statistics.median(getattr(self, kind))


def digest(planes: tuple) -> str:  # type: ignore[type-arg]
    """SHA-256 of decoded y, u, v planes."""
    joined = b"".join(np.ascontiguousarray(plane).tobytes() for plane in planes[:3])
    return hashlib.sha256(joined).hexdigest()


def run(codec: ModuleType, frames: Frames, quality: int, timing: Timing) -> None:
    """One encode and one decode, timed; the outputs are kept (and must not vary)."""
    start, cpu = time.perf_counter(), time.process_time()
    bitstream = codec.encode(frames, quality)
    timing.encode.append(time.perf_counter() - start)
    timing.encode_cpu.append(time.process_time() - cpu)
    start, cpu = time.perf_counter(), time.process_time()
    decoded = codec.decode(bitstream)
    timing.decode.append(time.perf_counter() - start)
    timing.decode_cpu.append(time.process_time() - cpu)
    if timing.bitstream and timing.bitstream != bitstream:
        raise SystemExit(f"{codec.__name__}: the encoder is not deterministic")
    timing.bitstream, timing.decoded = bitstream, digest(decoded)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="revision of the old seed (default: see above)")
    parser.add_argument(
        "--clips", default="builtin,tears", help=f"comma list of {', '.join(CLIPS)}"
    )
    parser.add_argument("--frames", type=int, default=30, help="frames of each clip (30)")
    parser.add_argument("--qualities", default="50", help="comma list of qualities (50)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each codec (3)")
    parser.add_argument("--threads", default="1", help="BLAS/OpenMP threads, as in the sandbox (1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.base or default_base()
    base_name = git("rev-parse", "--short", base)
    qualities = [int(q) for q in args.qualities.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        old_path = Path(folder) / "hybrid_old.py"
        old_path.write_bytes(git_file(base))
        old = load_module(old_path, "hybrid_old")
        new = load_module(ROOT / SEED, "hybrid_new")
    note = (
        f"hybrid.py at {base_name} (old) against the working tree (new); in-process calls, "
        f"not the sandbox; {args.threads} BLAS thread(s); {args.repeats} runs each, "
        f"alternating; medians; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    if not args.json:
        print(note, flush=True)
    rows = []
    warmed = False
    for key in args.clips.split(","):
        file, start = CLIPS[key]
        source = None if file is None else MEDIA / file
        if source is not None and not source.exists():
            print(f"{key}: skipped, {source} is absent", file=sys.stderr, flush=True)
            continue
        frames = load_clip(source, Settings(), start=start, count=args.frames).frames
        count, height, width = frames.y.shape
        if not warmed:  # the first calls of a process pay for lazy imports and allocations
            short = Frames(frames.y[:2], frames.u[:2], frames.v[:2], frames.fps)
            for codec in (old, new):
                codec.decode(codec.encode(short, qualities[0]))
            warmed = True
        for quality in qualities:
            timings = {"old": Timing(), "new": Timing()}
            for _ in range(args.repeats):
                run(old, frames, quality, timings["old"])
                run(new, frames, quality, timings["new"])
            o, n = timings["old"], timings["new"]
            row = {
                "clip": key,
                "size": f"{width}x{height}",
                "frames": count,
                "quality": quality,
                "encode_fps_old": o.fps(count, "encode"),
                "encode_fps_new": n.fps(count, "encode"),
                "decode_fps_old": o.fps(count, "decode"),
                "decode_fps_new": n.fps(count, "decode"),
                "bytes": len(n.bitstream),
                "same_bits": o.bitstream == n.bitstream,
                "same_frames": o.decoded == n.decoded,
                "encode_seconds": {k: t.encode for k, t in timings.items()},
                "decode_seconds": {k: t.decode for k, t in timings.items()},
                "encode_cpu_seconds": {k: t.encode_cpu for k, t in timings.items()},
                "decode_cpu_seconds": {k: t.decode_cpu for k, t in timings.items()},
            }
            rows.append(row)
            if not args.json:
                print(
                    f"{key} {width}x{height} x{count} q{quality}: "
                    f"encode {row['encode_fps_old']:.3f} -> {row['encode_fps_new']:.3f} fps "
                    f"(x{row['encode_fps_new'] / row['encode_fps_old']:.2f}; CPU time "
                    f"x{statistics.median(o.encode_cpu) / statistics.median(n.encode_cpu):.2f}), "
                    f"decode {row['decode_fps_old']:.2f} -> {row['decode_fps_new']:.2f} fps "
                    f"(x{row['decode_fps_new'] / row['decode_fps_old']:.2f}), "
                    f"{row['bytes']} bytes, same bits: {'yes' if row['same_bits'] else 'NO'}, "
                    f"same frames: {'yes' if row['same_frames'] else 'NO'}",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"base": base_name, "note": note, "rows": rows}, indent=1))
    else:
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0 if all(r["same_bits"] and r["same_frames"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
