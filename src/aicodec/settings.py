"""The lab's configuration: one typed settings object, overridable by environment and CLI."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
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
        default_factory=lambda: data_dir("baselines") / "ladder.toml",
        description="TOML file describing the standard-encoder ladder.",
    )
    suite_set: str = Field(
        default="builtin",
        description="Test set of `suite`: a set shipped in baselines/sets/ or a TOML file.",
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
    sandbox_isolation: str = Field(
        default="auto",
        description="auto (namespaces where unshare works), namespaces, or process.",
    )
    sandbox_allow_process: bool = Field(
        default=False,
        description="Let code a model wrote run in process mode where kernel "
        "isolation is unavailable (weaker: no namespaces; the child can read what the lab's "
        "user can).",
    )
    sandbox_wall_s: float = Field(
        default=600.0, gt=0, description="Wall clock per child, the absolute cap (s)."
    )
    sandbox_time_floor_s: float = Field(
        default=20.0,
        gt=0,
        description="Smallest wall-clock limit a child gets when a reference time is known (s).",
    )
    sandbox_time_multiple: float = Field(
        default=5.0,
        gt=0,
        description="A child's wall-clock limit: this many times the "
        "reference codec's time for the same clip, quality and role (parent in evolve).",
    )
    sandbox_seconds_per_megapixel_frame: float = Field(
        default=80.0,
        gt=0,
        description="A child's wall-clock limit when no reference time "
        "is known (score, run, the start of evolve): sandbox_time_floor_s plus this many "
        "seconds per megapixel-frame of the clip (frames x width x height / 1e6), at most "
        "sandbox_wall_s (s per megapixel-frame; the hybrid seed encodes in 8-25).",
    )
    sandbox_cpu_s: int = Field(default=600, ge=1, description="CPU time per child (s).")
    sandbox_memory_bytes: int = Field(
        default=6 * 1024**3, description="Address-space limit per child (bytes)."
    )
    sandbox_max_bitstream_bytes: int = Field(
        default=256 * 1024**2, description="Largest bitstream an encoder may return (bytes)."
    )
    sandbox_output_bytes: int = Field(
        default=64 * 1024, description="stdout/stderr kept per child (bytes)."
    )
    sandbox_flood_bytes: int = Field(
        default=16 * 1024**2, description="stdout+stderr after which a child is killed (bytes)."
    )
    sandbox_open_files: int = Field(default=256, ge=16, description="Open files per child.")
    sandbox_processes: int = Field(
        default=512, ge=8, description="Processes and threads of the sandbox user."
    )
    jobs: int = Field(
        default=0,
        ge=0,
        description="Sandbox jobs (encodes, decodes) and ladder encodes run "
        "at once (0: one per CPU core; with --device cuda at most cuda_jobs).",
    )
    cuda_jobs: int = Field(
        default=4,
        ge=1,
        description="Default jobs at once with --device cuda: the children "
        "share the GPU's memory (each holds its own CUDA context).",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where sandbox jobs and ladder encodes run: local (threads "
        "on this machine) or ray (tasks on a Ray cluster; needs aicodec[ray]).",
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to use with executor ray: HOST:PORT of its head, "
        "or local for a cluster started in this process (unset: RAY_ADDRESS, else local).",
    )
    ray_task_retries: int = Field(
        default=3,
        ge=0,
        description="Times a job is sent again after the Ray worker or node "
        "running it died (each retry is counted).",
    )
    sandbox_scratch_bytes: int = Field(
        default=256 * 1024**2,
        ge=1 << 20,
        description="Room a child's job folder has beyond "
        "its largest output (bytes; an OS-enforced tmpfs with namespace isolation).",
    )
    sandbox_job_inodes: int = Field(
        default=1024,
        ge=16,
        description="Files and folders a child's job folder may hold "
        "(an OS-enforced tmpfs inode limit with namespace isolation).",
    )
    sandbox_threads: int = Field(
        default=1, ge=1, description="Threads for numpy/OpenMP/torch inside a child."
    )
    sandbox_user: int = Field(
        default=65534, description="Unprivileged uid/gid a child runs as when the lab is root."
    )
    device: str = Field(default="cpu", description="Device a torch codec may use: cpu or cuda.")
    prompts_dir: Path = Field(
        default_factory=lambda: data_dir("prompts"), description="Prompt templates."
    )
    prompt_budget_tokens: int = Field(
        default=64_000, ge=2_000, description="Largest prompt sent to a model (tokens, estimated)."
    )
    provider: str | None = Field(
        default=None,
        description="anthropic, openai, mutation, tuner or replay (default: by key).",
    )
    offline_provider: Literal["mutation", "tuner"] = Field(
        default="mutation",
        description="The provider used when no provider is named and ANTHROPIC_API_KEY is "
        "not set: the mutation random walk or the tuner (Optuna).",
    )
    model: str = Field(default="claude-sonnet-5-5", description="Claude model for anthropic.")
    max_tokens: int = Field(default=8192, ge=256, description="Longest model answer (tokens).")
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Sampling temperature (unset: the model's "
        "own; Claude models from Sonnet 5 on refuse any other).",
    )
    prices_file: Path | None = Field(
        default=None,
        description="TOML price table ([models.NAME] input, output, cache_read, "
        "cache_write in USD per million tokens) merged over the built-in prices.toml.",
    )
    llm_timeout_s: float = Field(default=180.0, gt=0, description="Timeout of one model call.")
    llm_max_retries: int = Field(default=6, ge=0, description="Retries of a failed model call.")
    openai_base_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible server (…/v1)."
    )
    openai_model: str | None = Field(default=None, description="Model name on that server.")
    replay_db: str | None = Field(
        default=None, description="Store whose model-call log the replay provider answers from."
    )
    adopt_threshold_percent: float = Field(
        default=1.0,
        ge=0.0,
        description="BD-rate (percent) by which a candidate must beat the best to be adopted.",
    )
    adopt_max_decode_slowdown: float = Field(
        default=4.0, gt=0, description="Largest decode time of an adopted codec, times the best's."
    )
    mutation_scale: float = Field(
        default=0.1,
        gt=0,
        le=1.0,
        description="Mutation step: standard deviation as a fraction of a parameter's range.",
    )
    tuner_sampler: Literal["tpe", "gp"] = Field(
        default="tpe",
        description="The tuner provider's Optuna sampler: tpe (TPESampler) or gp (GPSampler).",
    )
    tuner_startup_trials: int = Field(
        default=1,
        ge=0,
        description="Scored trials of a codec structure before the tuner's sampler uses its "
        "model (until then it draws at random within PARAM_RANGES).",
    )
    evolve_islands: int = Field(
        default=2,
        ge=1,
        description="Islands of the evolve search; iteration n works on island "
        "(n - 1) mod islands.",
    )
    evolve_explore: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Chance that an iteration's parent is another of its island's top codecs "
        "instead of the island's best.",
    )
    evolve_top: int = Field(
        default=3, ge=2, description="How many of an island's best codecs exploration draws from."
    )
    evolve_migrate_every: int = Field(
        default=5, ge=1, description="Every this many iterations the best codec joins every island."
    )
    evolve_max_failures_in_row: int = Field(
        default=5,
        ge=1,
        description="An evolve run stops after this many iterations in a row fail without "
        "their codec measured (one stopped at the first stage was measured).",
    )
    evolve_duplicate_tries: int = Field(
        default=3, ge=1, description="Mutation draws per iteration while all are duplicates."
    )
    evolve_parallel: int = Field(
        default=1,
        ge=1,
        description="Evolve iterations in flight: the next are generated while one is scored.",
    )
    evolve_encoders: str = Field(
        default="",
        description="Ladder encoders evolved and adopted codecs are scored against, comma "
        "separated (empty: the ladder file's compare_with list).",
    )
    evolve_screen_frames: int = Field(
        default=8,
        ge=0,
        description="Frames of each training clip (from its start) the cheap first stage "
        "runs a candidate on, at the run's lowest and highest quality (0: no first stage).",
    )
    evolve_screen_stop_percent: float = Field(
        default=2.5,
        description="The first stage stops a candidate that needs more than this many percent "
        "more bits than its parent at equal PSNR-Y on those frames (about three standard "
        "deviations of its measured gap to the full BD-rate above the adoption threshold).",
    )
    evolve_tune_trials: int = Field(
        default=3,
        ge=0,
        description="Tuning iterations per new structure a model writes: the tuner proposes "
        "its PARAMS this many times before the loop goes on (0: no tuning).",
    )
    generate_repairs: int = Field(
        default=2, ge=0, description="Repair prompts per generated candidate that fails checks."
    )
    evolve_heartbeat_s: float = Field(
        default=5.0, gt=0, description="Seconds between the heartbeats a running evolve writes."
    )
    evolve_live_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A run carried out on another host is live while its last heartbeat is "
        "younger than this (seconds); on this host, while its process lives.",
    )
    serve_port: int = Field(
        default=8765,
        ge=0,
        le=65535,
        description="Port of aicodec serve on 127.0.0.1 (0: any free port).",
    )
    serve_refresh_s: int = Field(
        default=5,
        ge=1,
        description="Seconds between reloads of a served page while its run goes on.",
    )
    progress_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Where stderr is not a terminal (a CI log, 2> file): seconds between the "
        "plain progress lines of a long command, none in its first such interval (0: none).",
    )
    report_max_bytes: int = Field(
        default=2_000_000,
        ge=1,
        description="A report file larger than this (bytes) gets a "
        "warning: it may be too heavy to mail.",
    )
    host: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=255,
        description="This machine's name in the store's live-run records (default: its host "
        "name); give machines that share one store and one host name different names.",
    )
    evolve_planner: str = Field(
        default="auto", description="auto (the model plans when there is one), model or rules."
    )
    codec_repo: Path = Field(
        default=Path("codecs"), description="Git repository the adopted codecs are committed to."
    )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from defaults, the environment and explicit (CLI) overrides."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)
