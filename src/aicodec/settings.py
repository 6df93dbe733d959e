"""The lab's configuration: one typed settings object, overridable by environment and CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    """Locate a data folder shipped with the lab: inside a wheel, else beside ``src/``."""
    packaged = PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    return PACKAGE_DIR.parent.parent / name


class Settings(BaseSettings):
    """Every tunable of the lab; environment variables use the ``AICODEC_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="AICODEC_", extra="ignore")

    db: str = Field(
        default="sqlite:///experiments.db",
        description="SQLAlchemy URL of the experiment store (a bare path means a SQLite file).",
    )
    ladder_file: Path = Field(
        default_factory=lambda: _data_dir("baselines") / "ladder.toml",
        description="TOML file describing the standard-encoder ladder.",
    )
    psnr_yuv_weights: tuple[int, int, int] = Field(
        default=(6, 1, 1), description="Weights of PSNR-Y, PSNR-U, PSNR-V in PSNR-YUV."
    )
    metric_threads: int = Field(
        default=0, ge=0, description="Worker threads for PSNR/SSIM (0: one per CPU core)."
    )
    vmaf_model: str = Field(default="vmaf_v0.6.1", description="libvmaf built-in model version.")
    vmaf_threads: int = Field(default=2, ge=1, description="Threads given to libvmaf.")
    bd_method: str = Field(default="pchip", description="BD interpolation: pchip, akima or cubic.")
    bd_min_overlap: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Overlap of two RD curves below which BD warns."
    )
    max_clip_bytes: int = Field(
        default=4 * 1024**3, description="Largest decoded clip held in memory (bytes)."
    )
    max_dimension: int = Field(default=8192, description="Largest accepted width or height (px).")
    min_dimension: int = Field(default=16, description="Smallest accepted width or height (px).")
    ffmpeg_timeout_s: float = Field(
        default=3600.0, description="Wall-clock limit of one ffmpeg call (seconds)."
    )


def load_settings(**overrides: object) -> Settings:
    """Build the settings from defaults, the environment and explicit (CLI) overrides."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)
