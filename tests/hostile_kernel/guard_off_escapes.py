"""With the guard switched off, the encoder tries what an escaped codec wants: fork, a
shell (subprocess, through _posixsubprocess), a socket to 127.0.0.1, a setsid process
that would outlive the lab, a FIFO, a System V message queue.

Its bitstream reports, per attempt, "ok" or the error the kernel gave; the decoder
decodes nothing (this codec is judged on its encode).
"""

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


def _attempts(sys):
    load = sys.modules["importlib"].import_module
    os = sys.modules["os"]

    def fork():
        if os.fork() == 0:
            os._exit(0)

    def shell():
        load("subprocess").run(["/bin/sh", "-c", f"echo escaped > {SENTINEL}"], check=True)

    def connect():
        ctypes = load("ctypes")
        libc = ctypes.CDLL(None, use_errno=True)
        descriptor = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM
        if descriptor < 0:
            raise OSError(ctypes.get_errno(), "socket")
        address = bytes([2, 0, 0, 22, 127, 0, 0, 1]) + bytes(8)  # 127.0.0.1:22
        if libc.connect(descriptor, address, len(address)) < 0:
            raise OSError(ctypes.get_errno(), "connect")

    def setsid_child():
        load("subprocess").Popen(["/bin/sleep", "600"], start_new_session=True)

    def fifo():
        os.mkfifo("made.fifo")

    def message_queue():
        ctypes = load("ctypes")
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.msgget(0x41434F44, 0o1666) < 0:
            raise OSError(ctypes.get_errno(), "msgget")

    return {"fork": fork, "shell": shell, "connect": connect, "setsid_child": setsid_child,
            "fifo": fifo, "message_queue": message_queue}


def encode(frames, quality):
    sys = _sys()
    sys.modules["aicodec.sandbox.guard"].Guard._check = lambda self, event, args: None
    results = []
    for name, attempt in _attempts(sys).items():
        try:
            attempt()
            results.append(f"{name}=ok")
        except BaseException as exc:  # noqa: BLE001
            results.append(f"{name}={getattr(exc, 'errno', None) or repr(exc)}")
    return ";".join(results).encode()


def decode(bitstream):
    raise ValueError("this codec is judged on its encode")
