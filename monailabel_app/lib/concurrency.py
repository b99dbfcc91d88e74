"""Several users at once: inference off the server's event loop, a bounded queue, a timeout that answers.

MONAI Label 0.8.5 declares ``POST /infer/{model}`` as an ``async`` endpoint and runs the inference inside
it, so while one inference runs the server answers nothing else: not the other users, not ``/info``, not
the DICOMweb proxy the OHIF viewer reads images through. With its default
``MONAI_LABEL_INFER_CONCURRENCY=-1`` the inference runs in that coroutine and ``MONAI_LABEL_INFER_TIMEOUT``
never applies: a stuck inference holds the whole server.

:func:`serve_inference_in_threads` keeps the route (its parameters, authentication and answers) and has it
await MONAI Label's own ``run_inference`` in a worker thread; the event loop stays free.
:data:`DEFAULT_SETTINGS` turn MONAI Label's inference thread pool on, which bounds how many inferences run
at once and applies the timeout. A request past the timeout is answered 504 (by
:func:`timeout_error`); its thread cannot be killed and ends when the inference returns, so keep more than
one inference thread if an inference may hang.
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)

INFER_PATH = "/infer/{model}"
# this app's defaults in place of MONAI Label's (-1: inline, no timeout; 600 s)
DEFAULT_SETTINGS = {"MONAI_LABEL_INFER_CONCURRENCY": (-1, 2), "MONAI_LABEL_INFER_TIMEOUT": (600, 60)}


def apply_default_settings(settings: Any) -> None:
    """Where MONAI Label's ``settings`` hold MONAI Label's defaults, put this app's (:data:`DEFAULT_SETTINGS`);
    any other value, set in the environment, is kept. (``start_server`` writes every setting into the
    environment, so the environment cannot tell a default from a choice.)"""
    for name, (theirs, ours) in DEFAULT_SETTINGS.items():
        if getattr(settings, name) == theirs:
            setattr(settings, name, ours)


def timeout_error(model: str, image: str, seconds: float) -> HTTPException:
    """The 504 a request gets when its inference did not finish in time."""
    return HTTPException(
        status_code=504,
        detail=f"inference {model} on {image!r} did not finish within {seconds:g} s (MONAI_LABEL_INFER_TIMEOUT); "
        "it was abandoned: retry, or ask the administrator to raise the timeout",
    )


class InferenceQueue:
    """At most ``limit`` inference requests admitted at once (running or waiting); 0 = no limit.

    Args:
        limit: requests admitted at once; the next one is refused with 503 and ``Retry-After``.
        retry_after: seconds the refusal asks the client to wait.
    """

    def __init__(self, limit: int = 0, retry_after: int = 5) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.admitted = 0
        self._lock = threading.Lock()

    def __enter__(self) -> InferenceQueue:
        with self._lock:
            if self.limit and self.admitted >= self.limit:
                raise HTTPException(
                    status_code=503,
                    detail=f"{self.admitted} inference requests are already running or waiting (infer_queue "
                    f"{self.limit}); retry in {self.retry_after} s",
                    headers={"Retry-After": str(self.retry_after)},
                )
            self.admitted += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.admitted -= 1


def serve_inference_in_threads(router: APIRouter, queue: InferenceQueue) -> bool:
    """Make ``router``'s ``POST /infer/{model}`` (MONAI Label's ``monailabel.endpoints.infer.router``) run
    MONAI Label's ``run_inference`` in a worker thread, behind ``queue``: the same parameters, dependencies
    and answers, the event loop free meanwhile. Returns False (and changes nothing) where the route is not
    MONAI Label 0.8's. Call it before the server answers its first request."""
    from monailabel.endpoints.infer import run_inference

    route = next(
        (r for r in router.routes if isinstance(r, APIRoute) and r.path == INFER_PATH and "POST" in r.methods), None
    )
    if route is None or not inspect.iscoroutinefunction(route.endpoint):
        logger.warning(f"POST {INFER_PATH} not found as MONAI Label 0.8 declares it: inference stays as it is")
        return False
    if set(inspect.signature(route.endpoint).parameters) - {"user"} != set(inspect.signature(run_inference).parameters):
        logger.warning(f"POST {INFER_PATH} takes other parameters than run_inference: inference stays as it is")
        return False

    async def infer_in_thread(**values: Any) -> Any:
        values.pop("user", None)  # resolved by the route's RBAC dependency, as before
        with queue:
            return await run_in_threadpool(run_inference, **values)

    # the same parameters and dependencies: FastAPI reads them off the signature when it builds the route's
    # handler (for the router included in the app, at the first request)
    infer_in_thread.__signature__ = inspect.signature(route.endpoint)  # type: ignore[attr-defined]
    route.endpoint = route.dependant.call = infer_in_thread
    logger.info(f"POST {INFER_PATH} runs in worker threads (infer_queue {queue.limit or 'unbounded'})")
    return True
