"""aicodec suite: test sets read from TOML, a codec scored on every clip of a set, the
per-clip and per-class figures checked against `aicodec score` and the bjontegaard package,
and the files (CSV, JSON, CompressAI JSON, RD charts) written for papers and tools."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from aicodec.errors import SuiteError
from aicodec.scoring.rate_metrics import PSNR_Y, SSIM_Y, VMAF, ssim_db
from aicodec.suites import load_set, shipped_sets
from aicodec.suites.figures import geometric_mean, mean_or_none, mean_seconds, time_ratio
from tests.conftest import MEDIA
from tests.test_cli import aicodec, assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
INTRA = ROOT / "baselines" / "seeds" / "intra_dct.py"
ANCHORS = "x264,mpeg2"  # the ladder's anchor and a fast second encoder
TINY_SET = """
name = "tiny"
anchors = ["x264", "mpeg2"]
qualities = [30, 50, 70, 90]

[[clips]]
source = "builtin:default"
class = "synthetic"
frames = 4

[[clips]]
source = "builtin:still"
class = "synthetic"
frames = 4

[[clips]]
source = "builtin:carphone"
name = "phone"
class = "natural"
start = 2
frames = 4
"""
TINY_WINDOWS = {  # clip name -> (source, start, frames), as the set gives them
    "default": ("builtin:default", 0, 4),
    "still": ("builtin:still", 0, 4),
    "phone": ("builtin:carphone", 2, 4),
}


def write_set(folder: Path, text: str, name: str = "set.toml") -> Path:
    """A set file with ``text``."""
    path = folder / name
    path.write_text(text)
    return path


# --- reading sets ---------------------------------------------------------------------------


def test_the_shipped_set_has_synthetic_and_natural_classes() -> None:
    assert "builtin" in shipped_sets()
    shipped = load_set("builtin")
    assert shipped.classes == ["synthetic", "natural"]
    sources = {clip.source for clip in shipped.clips}
    assert {"builtin:default", "builtin:carphone", "builtin:bunny"} <= sources
    assert all(clip.spec.frames for clip in shipped.clips)  # short windows: minutes on 2 cores


def test_a_set_file_resolves_clip_paths_against_its_root(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    monkey_root = write_set(
        tmp_path,
        'root = "media"\n[[clips]]\nsource = "a.y4m"\n[[clips]]\nsource = "/abs/b.yuv"\n'
        'size = "352x288"\nfps = 25\nclass = "B"\n',
    )
    loaded = load_set(str(monkey_root))
    first, second = loaded.clips
    assert first.source == str((media / "a.y4m").resolve()) and first.klass == "all"
    assert first.name == "a" and second.name == "b"
    assert second.source == "/abs/b.yuv" and second.spec.size == "352x288"
    assert second.spec.fps == "25"
    assert loaded.classes == ["all", "B"] and loaded.name == "set"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\n", "lists no clips"),
        ("[[clips]]\nsorce = 'builtin:default'\n", "unknown key 'sorce'"),
        ("clip = 1\n[[clips]]\nsource = 'builtin:default'\n", "unknown key 'clip'"),
        ("[[clips]]\nclass = 'A'\n", "has no source"),
        ("[[clips]]\nsource = 'builtin:default'\nframes = 0\n", "frames must be a count"),
        ("[[clips]]\nsource = 'builtin:default'\nstart = -1\n", "start must be a frame"),
        (
            "[[clips]]\nsource = 'builtin:default'\n[[clips]]\nsource = 'builtin:default'\n",
            "names clip 'default' twice",
        ),
        ("qualities = 'high'\n[[clips]]\nsource = 'builtin:default'\n", "qualities must be"),
        ("[[clips]\n", "not valid TOML"),
    ],
)
def test_a_bad_set_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write_set(tmp_path, text)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(")):
        load_set(str(path))


def test_an_unknown_set_names_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"no test set 'jvet-ctc'.*builtin"):
        load_set("jvet-ctc")
    with pytest.raises(SuiteError, match="does not exist"):
        load_set(str(tmp_path / "missing.toml"))


def test_bad_sets_and_clips_are_one_line_errors_from_the_command(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    typo = write_set(tmp_path, "[[clips]]\nsource = 'builtin:default'\nframs = 4\n")
    assert_one_line_error(
        aicodec("suite", str(INTRA), "--set", str(typo), "--db", db), "unknown key 'frams'"
    )
    missing = write_set(tmp_path, "[[clips]]\nsource = 'gone.y4m'\nname = 'gone'\n", "m.toml")
    assert_one_line_error(
        aicodec("suite", str(INTRA), "--set", str(missing), "--db", db), "clip gone of the set"
    )
    assert_one_line_error(
        aicodec("suite", str(INTRA), "--set", "builtin", "--encoders", "x999", "--db", db),
        "x999",
    )
    few = aicodec("suite", str(INTRA), "--qualities", "30,60,90", "--db", db)
    assert_one_line_error(few, "needs at least 4 values")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    out = aicodec("suite", str(INTRA), "--out", str(blocked / "results"), "--db", db)
    assert_one_line_error(out, "cannot write the suite's files")


# --- the figures ----------------------------------------------------------------------------


def test_class_figures_are_means_of_the_clips() -> None:
    assert mean_or_none([1.0, -3.0]) == -1.0 and mean_or_none([1.0, None]) is None
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert geometric_mean([2.0, None]) is None and geometric_mean([]) is None
    assert time_ratio(3.0, 1.5) == 2.0 and time_ratio(3.0, None) is None
    assert mean_seconds([1.0, 2.0, 3.0]) == 2.0 and mean_seconds([1.0, None]) is None


def test_ssim_is_taken_in_db() -> None:
    assert ssim_db(0.99) == pytest.approx(20.0)
    assert ssim_db(0.9) == pytest.approx(10.0) and math.isinf(ssim_db(1.0))
    point = type("P", (), {"kbps": 100.0, "psnr_y": 40.0, "ssim_y": 0.999, "vmaf": None})()
    assert SSIM_Y.curve([point])[0].psnr == pytest.approx(30.0)
    assert PSNR_Y.curve([point])[0].psnr == 40.0 and PSNR_Y.on == "" and SSIM_Y.on == " on SSIM-Y"
    with pytest.raises(Exception, match="VMAF was not measured"):
        VMAF.curve([point])


# --- a suite run, end to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:  # type: ignore[type-arg]
    """intra_dct scored on a three-clip, two-class set: the JSON, the store, the folder."""
    folder = tmp_path_factory.mktemp("suite")
    path = write_set(folder, TINY_SET)
    db, out = folder / "store.db", folder / "out"
    done = aicodec(
        "suite", str(INTRA), "--set", str(path), "--db", str(db), "--out", str(out), "--json"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), db, out


@pytest.mark.slow
def test_suite_figures_equal_score_on_each_clip(tiny_suite: tuple[dict, Path, Path]) -> None:  # type: ignore[type-arg]
    result, db, _ = tiny_suite
    assert [clip["name"] for clip in result["clips"]] == list(TINY_WINDOWS)
    assert result["anchors"] == ["x264-medium", "mpeg2-ffmpeg"]
    for clip in result["clips"]:
        source, start, frames = TINY_WINDOWS[clip["name"]]
        scored = aicodec(
            "score", str(INTRA), "--video", source, "--start", str(start), "--frames", str(frames),
            "--qualities", "30,50,70,90", "--encoders", ANCHORS, "--db", str(db), "--json",
        )  # fmt: skip
        assert scored.returncode == 0, scored.stderr
        by_score = json.loads(scored.stdout)
        assert by_score["reused"] is True  # the suite's runs, from the store
        for anchor, value in by_score["bd_rate_vs"].items():
            assert clip["versus"][anchor]["bd_rate"]["psnr_y"] == value


@pytest.mark.slow
def test_class_and_set_rows_average_their_clips(tiny_suite: tuple[dict, Path, Path]) -> None:  # type: ignore[type-arg]
    result, _, _ = tiny_suite
    clips = {clip["name"]: clip["versus"] for clip in result["clips"]}
    members = {"synthetic": ["default", "still"], "natural": ["phone"]}
    rows = [*result["classes"], result["overall"]]
    members["all"] = list(clips)
    for row in rows:
        assert row["clips"] == members[row["name"]]
        for anchor in result["anchors"]:
            for metric in ("psnr_y", "psnr_yuv", "ssim_y"):
                values = [clips[name][anchor]["bd_rate"][metric] for name in row["clips"]]
                assert row["versus"][anchor]["bd_rate"][metric] == pytest.approx(
                    sum(values) / len(values)
                )
            ratios = [clips[name][anchor]["encode_time"] for name in row["clips"]]
            geometric = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            assert row["versus"][anchor]["encode_time"] == pytest.approx(geometric)


@pytest.fixture(scope="module")
def bjontegaard() -> ModuleType:
    """The reference BD package (pchip reproduces the JVET sheet)."""
    return pytest.importorskip("bjontegaard")


@pytest.mark.slow
def test_points_csv_reproduces_every_figure(
    tiny_suite: tuple[dict, Path, Path],  # type: ignore[type-arg]
    bjontegaard: ModuleType,
) -> None:
    """From the exported points alone, the bjontegaard package gives the same BD-rates on
    each metric, and the times give the same ratios."""
    result, _, out = tiny_suite
    rows = list(csv.DictReader((out / "points.csv").open()))
    assert len(rows) == 3 * 4 * 3  # clips x points x (codec and two anchors)
    summary = {
        (row["clip"], row["anchor"]): row
        for row in csv.DictReader((out / "summary.csv").open())
        if row["scope"] == "clip"
    }
    for clip in TINY_WINDOWS:
        codec = [row for row in rows if row["clip"] == clip and row["role"] == "codec"]
        for anchor in result["anchors"]:
            theirs = [row for row in rows if row["clip"] == clip and row["codec"] == anchor]
            for metric in ("psnr_y", "psnr_yuv", "ssim_y"):

                def figure(row: dict[str, str], metric: str = metric) -> float:
                    value = float(row[metric])
                    return -10 * math.log10(1 - value) if metric == "ssim_y" else value

                want = bjontegaard.bd_rate(
                    [float(r["kbps"]) for r in theirs], [figure(r) for r in theirs],
                    [float(r["kbps"]) for r in codec], [figure(r) for r in codec],
                    method="pchip", require_matching_points=False, min_overlap=0,
                )  # fmt: skip
                got = float(summary[(clip, anchor)][f"bd_rate_{metric}"])
                assert got == pytest.approx(float(want), abs=1e-6)
            encode = [float(r["encode_seconds"]) for r in codec]
            anchor_encode = [float(r["encode_seconds"]) for r in theirs]
            ratio = (sum(encode) / len(encode)) / (sum(anchor_encode) / len(anchor_encode))
            assert float(summary[(clip, anchor)]["encode_time"]) == pytest.approx(ratio)
            assert all(float(r["decode_seconds"]) > 0 for r in theirs)


@pytest.mark.slow
def test_compressai_json_and_charts_are_written(tiny_suite: tuple[dict, Path, Path]) -> None:  # type: ignore[type-arg]
    result, _, out = tiny_suite
    documents = {
        path.stem: json.loads(path.read_text()) for path in (out / "compressai").glob("*.json")
    }
    assert set(documents) == {"intra_dct.py", "x264-medium", "mpeg2-ffmpeg"}
    anchor = documents["x264-medium"]
    assert anchor["name"] == "x264-medium" and set(anchor["sequences"]) == set(TINY_WINDOWS)
    for key in ("psnr-y", "psnr-yuv", "ssim-y", "bitrate", "bpp", "encoding_time"):
        assert len(anchor["results"][key]) == 4
    # the set's list is the point-by-point mean of the sequences'
    firsts = [anchor["sequences"][name]["psnr-y"][0] for name in TINY_WINDOWS]
    assert anchor["results"]["psnr-y"][0] == pytest.approx(sum(firsts) / len(firsts))
    rates = anchor["results"]["bitrate"]
    assert rates == sorted(rates)
    for klass in ("synthetic", "natural"):
        chart = (out / f"rd-{klass}.svg").read_text()
        assert chart.startswith("<?xml") and "intra_dct.py" in chart and "mpeg2" in chart
    assert json.loads((out / "suite.json").read_text())["overall"] == result["overall"]
    pareto = (out / "pareto.svg").read_text()
    assert all(name in pareto for name in ("intra_dct.py", "x264-medium", "mpeg2-ffmpeg"))
    assert "relative to x264-medium" in pareto


@pytest.mark.slow
def test_csv_and_table_output(tiny_suite: tuple[dict, Path, Path], tmp_path: Path) -> None:  # type: ignore[type-arg]
    result, db, _ = tiny_suite
    path = write_set(tmp_path, TINY_SET)
    done = aicodec(
        "suite",
        str(INTRA),
        "--set",
        str(path),
        "--db",
        str(db),
        "--out",
        str(tmp_path / "o"),
        "--csv",
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == (3 + 2 + 1) * 2  # clip, class and set rows per anchor
    last = rows[-1]
    assert last["scope"] == "set" and float(last["bd_rate_psnr_y"]) == pytest.approx(
        result["overall"]["versus"]["mpeg2-ffmpeg"]["bd_rate"]["psnr_y"]
    )
    table = aicodec(
        "suite", str(INTRA), "--set", str(path), "--db", str(db), "--out", str(tmp_path / "o")
    )
    assert table.returncode == 0 and "against x264-medium" in table.stdout
    assert "synthetic" in table.stdout and "phone" in table.stdout and "mean" in table.stdout
    # the anchor is on the Pareto front of rate against encode time (nothing is both
    # faster and better than x264 here): its row of that table says so
    speed_rows = [line for line in table.stdout.splitlines() if "x264-medium" in line]
    assert any(line.rstrip(" │").endswith("yes") for line in speed_rows), table.stdout


@pytest.mark.slow
def test_a_set_of_files_on_disk_works_the_same_way(tmp_path: Path) -> None:
    """A set pointing at the shared media folder (as a lab points one at its JVET or UVG
    sequences) scores like the built-in one, and equals score on each clip."""
    for name in ("foreman_cif25.264", "carphone_qcif.mp4"):
        if not (MEDIA / name).is_file():
            pytest.skip(f"real clip {name} is not in {MEDIA} (the shared media folder is absent)")
    path = write_set(
        tmp_path,
        f'root = "{MEDIA}"\nanchors = ["x264"]\n'
        '[[clips]]\nsource = "foreman_cif25.264"\nclass = "CIF"\nframes = 4\n'
        '[[clips]]\nsource = "carphone_qcif.mp4"\nclass = "QCIF"\nframes = 4\n',
    )
    db = str(tmp_path / "store.db")
    done = aicodec(
        "suite", str(INTRA), "--set", str(path), "--db", db, "--out", str(tmp_path / "o"), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [klass["name"] for klass in result["classes"]] == ["CIF", "QCIF"]
    for clip, file in zip(result["clips"], ("foreman_cif25.264", "carphone_qcif.mp4"), strict=True):
        scored = aicodec(
            "score", str(INTRA), "--video", str(MEDIA / file), "--frames", "4",
            "--encoders", "x264", "--db", db, "--json",
        )  # fmt: skip
        assert scored.returncode == 0, scored.stderr
        want = json.loads(scored.stdout)["bd_rate_vs"]["x264-medium"]
        assert clip["versus"]["x264-medium"]["bd_rate"]["psnr_y"] == want


# --- a set as the clips of evolve and adopt -------------------------------------------------


def test_evolve_and_adopt_take_a_set_as_their_clips(tmp_path: Path) -> None:
    from aicodec.adoption.evaluation import evaluation_clips
    from aicodec.errors import ConfigError
    from aicodec.evolution.command import EvolveOptions, new_config
    from aicodec.settings import Settings

    path = write_set(tmp_path, TINY_SET)
    settings = Settings(codec_repo=tmp_path / "codecs")
    config = new_config(
        settings, EvolveOptions(iterations=1, video_set="builtin", holdout_set=str(path))
    )
    shipped = load_set("builtin")
    assert [(spec.path, spec.start, spec.frames) for spec in config.videos] == [
        (clip.source, clip.spec.start, clip.spec.frames) for clip in shipped.clips
    ]
    assert [(spec.path, spec.start, spec.frames) for spec in config.holdout] == list(
        TINY_WINDOWS.values()
    )
    with pytest.raises(ConfigError, match="--video or --video-set"):
        new_config(settings, EvolveOptions(iterations=1, videos=["a.y4m"], video_set="builtin"))
    with pytest.raises(ConfigError, match="--holdout or --holdout-set"):
        new_config(settings, EvolveOptions(iterations=1, holdout=["none"], holdout_set="builtin"))
    clips = evaluation_clips(settings, (), 0, None, test_set=str(path))
    assert [(clip.name, clip.start, clip.frames.count) for clip in clips] == [
        (source, start, frames) for source, start, frames in TINY_WINDOWS.values()
    ]


def test_a_bad_set_given_to_evolve_or_adopt_is_one_line(tmp_path: Path) -> None:
    from aicodec.candidates.records import record_candidate
    from aicodec.store import Store

    db = tmp_path / "store.db"
    store = Store(str(db))
    candidate = record_candidate(store, INTRA.read_text(), "intra_dct.py", origin="seed")
    store.close()
    missing = str(tmp_path / "missing.toml")
    adopted = aicodec("adopt", str(candidate), "--set", missing, "--db", str(db))
    assert_one_line_error(adopted, "does not exist")
    evolved = aicodec("evolve", "-n", "1", "--holdout-set", missing, "--db", str(db))
    assert_one_line_error(evolved, "does not exist")
    both = aicodec(
        "evolve", "-n", "1", "--video", "builtin:still", "--video-set", "builtin", "--db", str(db)
    )
    assert_one_line_error(both, "--video or --video-set")


@pytest.mark.slow
def test_speed_points_place_the_codec_and_anchors_against_the_ladder_anchor(
    tiny_suite: tuple[dict, Path, Path],  # type: ignore[type-arg]
) -> None:
    result, _, _ = tiny_suite
    speed = {point["name"]: point for point in result["speed"]}
    assert speed["x264-medium"]["encode_time"] == pytest.approx(1.0)
    assert speed["x264-medium"]["bd_rate"] == 0.0
    codec = speed["intra_dct.py"]
    overall = result["overall"]["versus"]["x264-medium"]
    assert codec["bd_rate"] == overall["bd_rate"]["psnr_y"]
    assert codec["encode_time"] == overall["encode_time"]
    rates = [
        clip["anchors"]["mpeg2-ffmpeg"]["bd_rate_vs_ladder_anchor"] for clip in result["clips"]
    ]
    assert speed["mpeg2-ffmpeg"]["bd_rate"] == pytest.approx(sum(rates) / len(rates))
