"""The options more than one command takes, each declared once.

An option whose value falls back to a setting has the default None and names, in its help,
the environment variable and the default that then apply; the default itself is written
only in the settings (``aicodec.settings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# --- output and store -----------------------------------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store URL or SQLite path \\[env AICODEC_DB; default experiments.db]."
    ),
]

# --- the clip window ------------------------------------------------------------------------

VideoOption = Annotated[
    Path | None,
    typer.Option(
        "--video",
        help="Video file (any format ffmpeg reads) or a built-in clip: builtin:default, "
        "builtin:still, builtin:shake (synthetic), builtin:carphone, builtin:bikes, "
        "builtin:bunny (natural video); default: builtin:default.",
    ),
]
StartOption = Annotated[int, typer.Option("--start", help="First frame of the window.")]
FramesOption = Annotated[
    int | None, typer.Option("--frames", help="Number of frames in the window (default: all).")
]
SizeOption = Annotated[str | None, typer.Option("--size", help="WxH, required for raw .yuv.")]
FpsOption = Annotated[
    str | None,
    typer.Option(
        "--fps",
        help="Frame rate (30, 29.97, 30000/1001); required for raw .yuv, "
        "overrides the file's rate otherwise.",
    ),
]
ConvertOption = Annotated[
    bool,
    typer.Option("--convert", help="Convert 10-bit, 4:2:2, 4:4:4 or RGB sources to 8-bit 4:2:0."),
]

# --- measuring ------------------------------------------------------------------------------

VmafOption = Annotated[bool, typer.Option("--vmaf", help="Also measure VMAF (vmaf_v0.6.1).")]
EncodersOption = Annotated[
    str | None,
    typer.Option(
        "--encoders",
        help="Ladder encoders, a comma list such as x264,vvenc (default: the whole ladder).",
    ),
]
QualitiesOption = Annotated[
    str | None,
    typer.Option("--qualities", help="Comma list of qualities 0-100 \\[default 20,40,60,80]."),
]

# --- a codec --------------------------------------------------------------------------------

CodecArgument = Annotated[Path, typer.Argument(help="The codec file (Python, in the contract).")]
KeepOption = Annotated[
    Path | None,
    typer.Option("--keep", help="Write DIR/q{quality}.bin and DIR/q{quality}.y4m per point."),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="cpu (default) or cuda: the device a torch codec may use."),
]

# --- where the work runs --------------------------------------------------------------------

JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        help="Sandbox jobs and ladder encodes at once \\[env AICODEC_JOBS; "
        "default one per core, at most 4 with --device cuda].",
        show_default=False,
    ),
]
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where sandbox jobs and ladder encodes run: local "
        "(default) or ray (a Ray cluster; pip install 'aicodec\\[ray]') "
        "\\[env AICODEC_EXECUTOR].",
        show_default=False,
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="With --executor ray: HOST:PORT of the cluster's head, "
        "or local to start one in this process \\[env RAY_ADDRESS; default local].",
        show_default=False,
    ),
]

# --- the model ------------------------------------------------------------------------------

ProviderOption = Annotated[
    str | None,
    typer.Option(
        "--provider",
        help="anthropic, openai, tuner, mutation or replay (default: anthropic when "
        "ANTHROPIC_API_KEY is set, else AICODEC_OFFLINE_PROVIDER: tuner).",
    ),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model name (Claude, or the openai server's).")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (implies --provider openai).",
    ),
]
PricesOption = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        help="TOML price table merged over the built-in one, for models "
        "it lacks (\\[models.NAME] input, output: USD per million tokens) "
        "\\[env AICODEC_PRICES_FILE].",
        show_default=False,
    ),
]

# --- adoption and evolve runs ---------------------------------------------------------------

GitRepoOption = Annotated[
    Path | None,
    typer.Option(
        "--git-repo",
        help="Codec repository for adoptions, created when absent or empty "
        "\\[env AICODEC_CODEC_REPO; default ./codecs].",
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="BD-rate (percent) by which a codec must beat the best to be adopted \\[default 1].",
    ),
]
RunOption = Annotated[
    int | None, typer.Option("--run", help="The evolve run's id (default: the last run).")
]
