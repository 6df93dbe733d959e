"""Which isolation a sandbox child gets here: every kernel layer (namespaces, private root,
user namespace, seccomp) where a probe child shows they work, else process isolation,
which code a model wrote may use only when the user opts in."""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from aicodec.errors import ConfigError, SandboxError
from aicodec.sandbox import child, syscalls
from aicodec.settings import Settings

# the layers a run in namespace mode must report, or it did not run isolated
KERNEL_LAYERS = (
    "mount-namespace",
    "pid-namespace",
    "net-namespace",
    "ipc-namespace",
    "uts-namespace",
    "user-namespace",
    "pivot-root",
    "seccomp",
)
PROBE_CODEC = (
    "def encode(frames, quality):\n    return b'ok'\n\n\ndef decode(data):\n    return None\n"
)


def isolation_mode(settings: Settings) -> str:
    """The isolation actually used: ``namespaces`` (every kernel layer) where it works here
    (and is asked for), else ``process``."""
    if settings.device not in ("cpu", "cuda"):
        raise ConfigError(f"device {settings.device!r} is not cpu or cuda")
    wanted = settings.sandbox_isolation
    if wanted not in ("auto", "namespaces", "process"):
        raise ConfigError(f"sandbox isolation {wanted!r} is not auto, namespaces or process")
    if wanted == "process":
        return "process"
    problem = kernel_isolation_problem()
    if problem is None:
        return "namespaces"
    if wanted == "namespaces":
        raise ConfigError(f"namespace isolation was asked for but is not available: {problem}")
    return "process"


def refuse_unisolated_model_code(settings: Settings) -> None:
    """Raise ConfigError when code a model wrote would run here without every kernel layer
    and the user has not opted in to process mode (``sandbox_allow_process``)."""
    if settings.sandbox_allow_process or isolation_mode(settings) == "namespaces":
        return
    why = kernel_isolation_problem() or "process isolation was asked for"
    raise ConfigError(
        f"code a model writes runs only with kernel isolation, which is not in force here "
        f"({why}); to run it with process isolation anyway, pass --allow-process-sandbox "
        f"(AICODEC_SANDBOX_ALLOW_PROCESS=1)"
    )


def namespaces_available() -> bool:
    """Whether children can run with every kernel layer here (see kernel_isolation_problem)."""
    return kernel_isolation_problem() is None


@lru_cache(maxsize=1)
def kernel_isolation_problem() -> str | None:
    """Why a child cannot run with every kernel layer on this machine (namespaces, private
    root, user namespace, seccomp), found by running one; None when it can."""
    # runner chooses a child's isolation here: it is imported when the probe runs
    from aicodec.sandbox.folders import PROBE_KIND, work_folder
    from aicodec.sandbox.runner import run_child

    if sys.platform != "linux":
        return f"kernel isolation needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "namespace isolation needs the lab to run as root"
    problem = syscalls.filter_problem()
    if problem is not None:
        return problem
    settings = Settings(sandbox_isolation="namespaces", sandbox_wall_s=30.0)
    with work_folder(PROBE_KIND) as folder:  # a lab killed meanwhile leaves it to a sweep
        try:
            report, _ = run_child(
                "encode",
                PROBE_CODEC,
                folder / "job",
                settings,
                mode="namespaces",
                inputs={child.FRAMES_FILE: bytes(96)},
                output=child.BITSTREAM_FILE,
                output_bytes=16,
                job={
                    "quality": 50,
                    "width": 8,
                    "height": 8,
                    "count": 1,
                    "fps_num": 1,
                    "fps_den": 1,
                },
            )
        except (OSError, SandboxError) as exc:
            return f"the probe child could not start ({exc})"
    missing = [layer for layer in KERNEL_LAYERS if layer not in report.isolation]
    if not report.ok:
        return f"the probe child failed: {report.describe()}"
    if missing:
        return f"the probe child ran without {', '.join(missing)}"
    return None
