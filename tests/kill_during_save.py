"""Run a bundle's training in this process and SIGKILL it halfway through its Nth checkpoint write.

    python tests/kill_during_save.py N CONFIG_FILE OVERRIDES_JSON

N = 0: never kill; print ``writes=<count>`` at the end (to learn how many save points a run has).
The Nth ``torch.save`` writes half of its bytes, flushes them to disk, and the process kills itself:
what ``kill -9`` or a power cut during a checkpoint write leaves behind.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import torch
from monai.bundle import ConfigWorkflow

kill_at, config_file, overrides = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
writes = 0
real_save = torch.save


def save_then_maybe_die(obj, f, *args, **kwargs):
    global writes
    writes += 1
    if writes != kill_at:
        return real_save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    half = buffer.getvalue()[: buffer.tell() // 2]
    if hasattr(f, "write"):
        f.write(half)
        f.flush()
        os.fsync(f.fileno())
    else:
        with open(f, "wb") as out:
            out.write(half)
    os.kill(os.getpid(), signal.SIGKILL)


torch.save = save_then_maybe_die
workflow = ConfigWorkflow(config_file=config_file, workflow_type="train", run_id="training", **overrides)
workflow.initialize()
workflow.run()
workflow.finalize()
print(f"writes={writes}")
