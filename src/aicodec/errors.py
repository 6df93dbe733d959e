"""Error types of the lab; the CLI turns each into one clear line and a non-zero exit."""


class AicodecError(Exception):
    """Base of every error the lab reports to its user as one line."""

    exit_code = 2


class ConfigError(AicodecError):
    """A setting or option has a value the lab cannot use."""


class ClipError(AicodecError):
    """A video source cannot become a clip (missing, unreadable, wrong format or size)."""


class FFmpegError(AicodecError):
    """The bundled ffmpeg binary failed or is missing."""


class MetricError(AicodecError):
    """Two clips cannot be compared (different sizes or frame counts)."""


class BDRateError(AicodecError):
    """Rate-distortion curves cannot give a Bjontegaard delta."""


class BaselineError(AicodecError):
    """A standard encoder of the ladder failed or its ladder data is wrong."""


class StoreError(AicodecError):
    """The experiment store cannot be opened or written."""


class ExecutorError(AicodecError):
    """The executor could not run a job: its cluster is unreachable, or the workers running
    the job kept dying (no figure is made from a job that did not finish)."""


class SandboxError(AicodecError):
    """A candidate failed in the sandbox (crash, timeout, limit, refused access, bad output)."""

    exit_code = 1


class ValidationError(AicodecError):
    """A candidate's source breaks the codec contract or the sandbox rules."""

    exit_code = 1


class ProviderError(AicodecError):
    """A model provider failed: no key, unreachable, rate-limited past its retries, bad answer."""


class GenerationError(AicodecError):
    """A model's answer could not become a candidate (no code, edits that do not apply)."""


class AdoptionError(AicodecError):
    """A candidate cannot be adopted: the codec repository is unusable or the request is wrong."""


class EvolutionError(AicodecError):
    """An evolve run cannot start, resume or go on (no run to resume, changed clips, budget)."""


class ReportError(AicodecError):
    """A report, page or plot cannot be made: no such run or candidate, a file that cannot be
    written, a port already taken."""


class SuiteError(AicodecError):
    """A test set cannot be used: its file is missing or not valid TOML, or it names no
    clips, an unknown key, a clip twice or a class with no clip."""
