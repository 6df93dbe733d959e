"""The sandbox: untrusted codec code runs in fresh, limited, isolated child processes.

The parent side lives in :mod:`aicodec.sandbox.runner` (one child: its job folder, its
process in :mod:`~aicodec.sandbox.process`, its report in :mod:`~aicodec.sandbox.report`,
its outputs in :mod:`~aicodec.sandbox.outputs`, the isolation chosen by
:mod:`~aicodec.sandbox.probe`) and :mod:`aicodec.sandbox.execute` (a candidate's encodes
and decodes, in work folders from :mod:`~aicodec.sandbox.folders`);
:mod:`aicodec.sandbox.child` is what runs inside a child (kept free of heavy imports so
children start fast).
"""
