"""MONAI Label app serving the spcxr-monai bundles from local folders or a DICOMweb PACS (no Model Zoo download).

Start it (in the MONAI Label environment made by ``monailabel_app/install.sh``)::

    monailabel start_server --app monailabel_app --studies /path/to/cxrs --host 127.0.0.1 \
        --conf bundles bundles/spcxr_lung_segmentation,bundles/spcxr_cxr_classification

Always pass ``--host 127.0.0.1`` (MONAI Label binds 0.0.0.0, every network interface, by default, and
this app adds no authentication of its own: it would serve patient images to the whole network). Beyond
this machine, use ``monailabel_app/reading_room.py`` (nginx with TLS and sign-in in front, this app on loopback
behind ``lib.behind_proxy``) or MONAI Label's own authentication (``MONAI_LABEL_AUTH_ENABLE=true`` with a
Keycloak realm in ``MONAI_LABEL_AUTH_REALM_URI``; see docs/deployment.md).

``--conf`` values:

- ``bundles``: comma-separated bundle folders, each with ``configs/inference.json`` and
  ``models/model.pt`` (default: this repository's segmentation and classification bundles). The
  model name is the folder's name without ``spcxr_`` (``lung_segmentation``, ``cxr_classification``).
  A bundle without a trained ``models/model.pt`` is left out with a warning.
- ``bundle_overrides``: a JSON object of inference config values, e.g. ``{"mask_value": 1}``; the
  networks' sizes need none: the inference configs read them off ``models/model.pt``.
- ``preload``: ``true`` loads the networks at start-up.
- ``modalities``: with ``--studies http(s)://.../dicom-web``, the series modalities served (default
  ``CR,DX``); ``final`` labels saved there go back to the PACS as DICOM SEG (see ``lib/dicomweb.py``).
- ``allow_open_host``: ``true`` lets the app serve on a non-loopback ``--host`` without MONAI Label's
  authentication (only behind a proxy that authenticates); otherwise the app refuses to start there.
- ``infer_queue``: at most this many inference requests admitted at once (running or waiting); the next
  one is answered 503 with ``Retry-After`` (default 0: no bound).
- ``monailabel_inference``: ``true`` leaves inference as MONAI Label 0.8 runs it (on the event loop, its
  own defaults), for comparison.

Several users: ``POST /infer`` runs in the server's worker threads (not on its event loop, as MONAI Label
0.8 does), at most ``MONAI_LABEL_INFER_CONCURRENCY`` inferences at once (2 where MONAI Label's default, -1,
is left), each answered 504 after ``MONAI_LABEL_INFER_TIMEOUT`` seconds (60 where its 600 is left); see
``lib/concurrency.py``.

Only inference and active-learning strategies are served: training stays with the bundles'
``train.json`` (``python -m monai.bundle run training``), which is where its data checks live.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
from typing import Any

from fastapi import HTTPException
from lib import audit
from lib.concurrency import InferenceQueue, apply_default_settings, serve_inference_in_threads, timeout_error
from lib.dicomweb import RADIOGRAPH_MODALITIES, RadiographDICOMwebDatastore
from lib.infers import SPCXRBundleInferTask, parse_overrides
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMwebClientX
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random

from spcxr_monai.errors import find_spcxr_error

logger = logging.getLogger(__name__)

REPO_BUNDLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundles")
DEFAULT_BUNDLES = ",".join(
    os.path.join(REPO_BUNDLES, name) for name in ("spcxr_lung_segmentation", "spcxr_cxr_classification")
)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def requested_host(argv: list[str]) -> str:
    """The ``--host`` / ``-i`` given to ``monailabel start_server`` (which runs the app in-process), or
    MONAI Label's own default, 0.0.0.0."""
    for i, arg in enumerate(argv):
        if arg in ("--host", "-i") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
    return "0.0.0.0"


def check_host(host: str, auth_enabled: bool, allow_open_host: bool = False) -> None:
    """Refuse to serve patient images beyond this machine without authentication.

    Raises:
        RuntimeError: ``host`` is not a loopback address, authentication is off and not overridden.
    """
    if host in LOOPBACK_HOSTS or auth_enabled or allow_open_host:
        return
    raise RuntimeError(
        f"refusing to serve on {host!r}: every machine that can reach it could read the studies, and "
        "authentication is off. Pass --host 127.0.0.1, or turn on MONAI Label's authentication "
        "(MONAI_LABEL_AUTH_ENABLE=true, MONAI_LABEL_AUTH_REALM_URI=<Keycloak realm>), or, behind a proxy "
        "that authenticates, --conf allow_open_host true"
    )


def model_name(bundle_path: str) -> str:
    """``.../spcxr_lung_segmentation`` -> ``lung_segmentation``."""
    name = os.path.basename(os.path.normpath(bundle_path))
    return name[len("spcxr_") :] if name.startswith("spcxr_") else name


class SPCXRApp(MONAILabelApp):
    """Chest X-ray lung segmentation and classification from spcxr-monai bundles."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        check_host(
            requested_host(sys.argv),
            bool(settings.MONAI_LABEL_AUTH_ENABLE),
            str(conf.get("allow_open_host", "false")).lower() == "true",
        )
        self.bundle_paths = [os.path.abspath(p) for p in conf.get("bundles", DEFAULT_BUNDLES).split(",") if p]
        missing = [p for p in self.bundle_paths if not os.path.isfile(os.path.join(p, "configs", "inference.json"))]
        if missing:
            raise ValueError(f"--conf bundles: no configs/inference.json in {', '.join(missing)}")
        self.overrides = parse_overrides(conf.get("bundle_overrides"))
        as_monailabel = str(conf.get("monailabel_inference", "false")).lower() == "true"
        if not as_monailabel:
            apply_default_settings(settings)  # before MONAI Label makes its inference thread pool
        logger.info(
            f"inference: concurrency {settings.MONAI_LABEL_INFER_CONCURRENCY}, timeout "
            f"{settings.MONAI_LABEL_INFER_TIMEOUT} s, in worker threads: {not as_monailabel}"
        )
        if "*.dcm" not in settings.MONAI_LABEL_DATASTORE_FILE_EXT:  # radiographs often come as .dcm files
            settings.MONAI_LABEL_DATASTORE_FILE_EXT = [*settings.MONAI_LABEL_DATASTORE_FILE_EXT, "*.dcm"]
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="spcxr-monai",
            description="Lung segmentation (UNETR) and covid / pneumonia / normal classification (ViT) "
            "on a GMML-pretrained chest X-ray encoder",
            version="0.1.0",
        )
        if "monailabel.app" in sys.modules and not as_monailabel:  # inside a server, not built by a script
            from monailabel.endpoints.infer import router

            serve_inference_in_threads(router, InferenceQueue(int(conf.get("infer_queue", 0))))

    def _init_dicomweb_datastore(self) -> Datastore:
        """``--studies http(s)://.../dicom-web``: CR / DX series of a PACS, final labels back as DICOM SEG."""
        session = None
        if settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
            from dicomweb_client.session_utils import create_session_from_user_pass

            session = create_session_from_user_pass(
                settings.MONAI_LABEL_DICOMWEB_USERNAME, settings.MONAI_LABEL_DICOMWEB_PASSWORD
            )
        client = DICOMwebClientX(
            url=self.studies,
            session=session,
            qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
            wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
            stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX,
        )
        modalities = [m.strip() for m in self.conf.get("modalities", ",".join(RADIOGRAPH_MODALITIES)).split(",")]
        cache = (settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip()
        return RadiographDICOMwebDatastore(client, modalities=[m for m in modalities if m], cache_path=cache or None)

    def infer(self, request, datastore=None):
        """MONAI Label's ``infer``; a bad image is answered 422 with the file and the problem, an inference
        past ``MONAI_LABEL_INFER_TIMEOUT`` 504, not a bare 500. Each one, answered or not, is a line of the
        audit log (``lib/audit.py``) naming the signed-in reader."""
        model, image = request.get("model", "?"), request.get("image", "?")
        try:
            result = super().infer(request, datastore)
        except concurrent.futures.TimeoutError as e:
            seconds = request.get("timeout", settings.MONAI_LABEL_INFER_TIMEOUT)
            audit.record("infer", f"timeout after {seconds:g} s", model, **self._study_and_series(image))
            raise timeout_error(model, image, seconds) from e
        except Exception as e:
            cause = find_spcxr_error(e)  # a bad file or setting, which MONAI's transforms wrap
            outcome = f"refused: {cause}" if cause is not None else f"failed: {type(e).__name__}"
            audit.record("infer", outcome, model, **self._study_and_series(image))
            if cause is None:
                raise
            raise HTTPException(status_code=422, detail=str(cause)) from e
        answer = result.get("params") if isinstance(result, dict) else None
        audit.record("infer", "answered", model, **self._study_and_series(image), **_answer_summary(answer))
        return result

    def _study_and_series(self, image: str) -> dict[str, str]:
        """The study and series of an image id (a series UID in a PACS) for the audit log."""
        try:
            study = self.datastore().get_image_info(image).get("StudyInstanceUID", "")
        except Exception:  # the audit line is written anyway, without the study
            study = ""
        return {"study": str(study or ""), "series": image}

    def _download_dcmqi_tools(self) -> None:
        """Nothing to download: DICOM SEG is written with highdicom, not dcmqi (fetched from GitHub)."""

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for path in self.bundle_paths:
            task = SPCXRBundleInferTask(path, self.conf, overrides=self.overrides)
            if not task.is_valid():
                logger.warning(f"bundle {path} left out: no models/model.pt (train it first)")
                continue
            infers[model_name(path)] = task
            logger.info(f"+++ Adding Inferer:: {model_name(path)} => {path}")
        return infers

    def init_trainers(self) -> dict:
        return {}

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First()}


def _answer_summary(answer: Any) -> dict[str, Any]:
    """What the audit log keeps of an answer: the top class and the screening verdict of a classification,
    the input gate's verdict; a segmentation's mask stays with the result."""
    if not isinstance(answer, dict):
        return {}
    summary: dict[str, Any] = {}
    if answer.get("prediction"):
        top = max(answer["prediction"], key=lambda p: p.get("score", 0))
        summary["answer"] = f"{top.get('label')} {top.get('score', 0):.3f}"
    if isinstance(answer.get("screening"), dict):
        summary["screening"] = answer["screening"].get("verdict")
    if isinstance(answer.get("gate"), dict):
        summary["gate_ok"] = answer["gate"].get("ok")
    return summary
