"""Test-only fault: a MONAI Label server started with this folder on ``PYTHONPATH`` and
``SPCXR_TEST_STUCK_MARKER`` set hangs (for an hour) when it reads a study whose file name contains the
marker: a stuck inference, for the timeout test. Nothing else changes."""

import os

_MARKER = os.environ.get("SPCXR_TEST_STUCK_MARKER")

if _MARKER:
    import time

    from spcxr_monai.data import cxr_reader

    _read = cxr_reader.CXRReader.read

    def _read_or_hang(self, data, **kwargs):
        names = data if isinstance(data, (list, tuple)) else [data]
        if any(_MARKER in os.fspath(name) for name in names):
            time.sleep(3600)
        return _read(self, data, **kwargs)

    cxr_reader.CXRReader.read = _read_or_hang
