"""With the guard switched off, the encoder reaches for files outside its folder: the
source clip, the lab's environment (its API keys) through /proc, a file in /tmp and one
in the user's home. Its bitstream reports, per attempt, "ok" or the error the kernel gave."""

SOURCE = "{SOURCE}"
SENTINEL = "{SENTINEL}"


def _sys():
    seen, stack = [], [().__class__.__base__]
    while stack:
        for sub in type.__subclasses__(stack.pop()):
            if sub.__name__ == "_wrap_close":
                return sub.__init__.__globals__["sys"]
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    raise LookupError("no route to sys")


def encode(frames, quality):
    sys = _sys()
    sys.modules["aicodec.sandbox.guard"].Guard._check = lambda self, event, args: None
    os = sys.modules["os"]
    attempts = {
        "read_source": lambda: os.close(os.open(SOURCE, os.O_RDONLY)),
        "read_lab_environ": lambda: os.close(os.open(f"/proc/{os.getppid()}/environ", os.O_RDONLY)),
        "write_sentinel": lambda: os.close(os.open(SENTINEL, os.O_WRONLY | os.O_CREAT, 0o600)),
        "write_tmp": lambda: os.close(os.open("/tmp/aicodec-escaped", os.O_WRONLY | os.O_CREAT, 0o600)),
    }
    results = []
    for name, attempt in attempts.items():
        try:
            attempt()
            results.append(f"{name}=ok")
        except OSError as exc:
            results.append(f"{name}={exc.errno}")
    return ";".join(results).encode()


def decode(bitstream):
    raise ValueError("this codec is judged on its encode")
