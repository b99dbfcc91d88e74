"""The MONAI Label server behind the reading room's proxy: ``start_server --uvicorn_app lib.behind_proxy:app``.

MONAI Label's FastAPI app wrapped in :class:`~lib.identity.ProxyIdentityMiddleware` with the token in
``$SPCXR_PROXY_TOKEN`` (set by ``monailabel_app/reading_room.py``): a request without the proxy's token and a
signed-in user is answered 401 and never reaches MONAI Label.
"""

from __future__ import annotations

import os

from monailabel.app import app as monailabel_app

from lib.identity import ProxyIdentityMiddleware

TOKEN_ENV = "SPCXR_PROXY_TOKEN"

if not os.environ.get(TOKEN_ENV):
    raise RuntimeError(f"${TOKEN_ENV} is not set: lib.behind_proxy serves only behind the reading room's proxy")

app = ProxyIdentityMiddleware(monailabel_app, os.environ[TOKEN_ENV])
