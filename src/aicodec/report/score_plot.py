"""The RD chart of one scoring (``aicodec score --plot``): the codec against the ladder
encoders it was compared with, on the clip it was scored on, from the stored points."""

from __future__ import annotations

from pathlib import Path

from aicodec.ladder import load_ladder
from aicodec.report.charts import Curve, write_rd_plot
from aicodec.safe_text import printable
from aicodec.scoring.candidate import ScoreOutcome
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.points import stored_ladder_points
from aicodec.store.queries.runs import stored_clip_id


def score_curves(store: Store, settings: Settings, outcome: ScoreOutcome) -> list[Curve]:
    """The scored codec's curve and those of the encoders it was compared with (PSNR-Y, dB)."""
    ladder = load_ladder(settings.ladder_file)
    clip_id = stored_clip_id(store, outcome.clip.content_hash)
    with store.session() as session:
        stored = stored_ladder_points(session, ladder, clip_id) if clip_id is not None else {}
        curves = [
            Curve(name, [row.kbps for row in rows], [row.psnr_y for row in rows])
            for name, rows in stored.items()
            if name in outcome.bd_rate_vs
        ]
    points = sorted(outcome.points, key=lambda point: point.kbps)
    curves.append(
        Curve(printable(outcome.name), [p.kbps for p in points], [p.psnr_y for p in points], "best")
    )
    return curves


def write_score_plot(store: Store, settings: Settings, outcome: ScoreOutcome, path: Path) -> None:
    """Write the scoring's RD chart (PSNR-Y against log rate) as SVG or PNG."""
    clip = outcome.clip.frames
    title = f"{printable(outcome.clip.name)}: {clip.width}x{clip.height}, {clip.count} frames"
    write_rd_plot(path, {title: score_curves(store, settings, outcome)})
