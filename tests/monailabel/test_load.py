"""Several users at once on one MONAI Label server of the app (``monailabel_app/loadtest.py``).

8 clients x 10 ``/infer`` requests, segmentation and classification mixed, on held-out CXRs and a real
DICOM: every request answered, every answer the one a lone request gets for that image, resident memory
flat after the warm-up. A stuck inference (made by ``stuck_inference/sitecustomize.py``, test-only) is
answered 504 by the timeout while the other users are served. A configured bound refuses with 503 and
``Retry-After``. Figures per setting: ``benchmarks/monailabel_load.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from label_server import APP, server

sys.path.insert(0, str(APP))
import loadtest

pytestmark = pytest.mark.monailabel

STUCK = "stuck_case"  # a study whose reading hangs in the server under test
TIMEOUT_S = 15
FAULT = {
    "PYTHONPATH": str(Path(__file__).parent / "stuck_inference"),
    "SPCXR_TEST_STUCK_MARKER": STUCK,
    "MONAI_LABEL_INFER_TIMEOUT": str(TIMEOUT_S),
}


@pytest.fixture(scope="module")
def studies(trained, shared_data) -> tuple[Path, list[str]]:
    """Held-out COVID-QU-Ex val images (2 per class), the real CR DICOM, and the stuck study."""
    work, _ = trained
    folder = work / "load_studies"
    folder.mkdir()
    val = shared_data / "covid-qu-ex" / "val"
    for cls in ("covid", "pneumonia", "normal"):
        for name in sorted(os.listdir(val / cls / "images"))[:2]:
            shutil.copy(val / cls / "images" / name, folder / name)
    shutil.copy(shared_data / "dicom" / "RG1_J2KI.dcm", folder / "RG1_J2KI.dcm")
    images = sorted(p.stem for p in folder.iterdir())
    shutil.copy(val / "normal" / "images" / sorted(os.listdir(val / "normal" / "images"))[0], folder / f"{STUCK}.png")
    return folder, images


@pytest.fixture(scope="module")
def load_server(trained, studies):
    """The app as configured by default (inference in threads, 2 at once), with the stuck study."""
    work, bundles = trained
    with server(str(studies[0]), bundles, work, "load_server", FAULT) as (url, proc):
        yield url, proc


def test_eight_users_each_get_their_own_answers(load_server, studies):
    url, proc = load_server
    result = loadtest.run(url, studies[1], clients=8, requests=10, pid=proc.pid)
    assert result.failed == 0 and result.mixed_up == 0, result.failures
    assert result.answered == 80 and result.refused == 0
    assert result.wall_seconds < 120
    assert result.rss_after_run_mib <= 1.1 * result.rss_after_warmup_mib, result
    # the viewer's light requests do not wait behind the inferences
    assert result.viewer_p95_seconds < 1.0, result


def test_a_stuck_inference_is_ended_by_the_timeout_while_others_are_served(load_server, studies):
    url, _ = load_server
    stuck: list[loadtest.Answer] = []
    waiting = threading.Thread(target=lambda: stuck.append(loadtest.infer(url, "lung_segmentation", STUCK)))
    waiting.start()
    time.sleep(2)
    info_start = time.perf_counter()
    assert json.loads(urllib.request.urlopen(f"{url}/info/", timeout=10).read())["name"] == "spcxr-monai"
    assert time.perf_counter() - info_start < 2
    other = loadtest.infer(url, "cxr_classification", studies[1][0], timeout=30)
    assert other.status == 200 and other.seconds < TIMEOUT_S
    waiting.join(timeout=TIMEOUT_S + 30)
    (answer,) = stuck
    assert answer.status == 504, answer
    assert f"did not finish within {TIMEOUT_S} s" in answer.error and STUCK in answer.error, answer.error
    assert TIMEOUT_S - 1 <= answer.seconds < TIMEOUT_S + 10


def test_a_configured_bound_refuses_with_retry_after(trained, studies):
    work, bundles = trained
    with server(str(studies[0]), bundles, work, "bounded_server", args=("--conf", "infer_queue", "2")) as (url, proc):
        result = loadtest.run(url, studies[1], clients=8, requests=3, pid=proc.pid)
    assert result.failed == 0 and result.mixed_up == 0, result.failures  # refusals carry Retry-After
    assert result.refused > 0 and result.answered > 0
    assert result.answered + result.refused == 24
