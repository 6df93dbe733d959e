"""The sandbox: untrusted codec code runs in fresh, limited, isolated child processes.

The parent side lives in :mod:`aicodec.sandbox.runner`; :mod:`aicodec.sandbox.child` is
what runs inside a child (kept free of heavy imports so children start fast).
"""
