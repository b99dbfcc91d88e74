"""The reading room as a user starts it (``monailabel_app/reading_room.py``): Orthanc, MONAI Label and nginx
with TLS and sign-in, on a free port of every address; and the requests a signed-in reader's browser sends."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orthanc_pacs as pacs
import pydicom
from label_server import APP, label_python
from processes import free_port

COMMAND = APP / "reading_room.py"
PASSWORDS = {"alice": "alice-reads-cxr", "bob": "bob-reads-cxr-too"}


@dataclass
class Room:
    """A running reading room: its URL, its folder and what the test needs to talk to it."""

    url: str
    folder: Path
    port: int
    certificate: Path
    fingerprint: str
    orthanc: str
    orthanc_auth: dict
    uploaded: dict = field(default_factory=dict)

    def context(self) -> ssl.SSLContext:
        """TLS that trusts this room's certificate (and nothing else) and checks the host name."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def spki_sha256(self) -> str:
        """The certificate's public-key hash, as Chromium's ``--ignore-certificate-errors-spki-list`` takes it."""
        key = subprocess.run(
            ["openssl", "x509", "-in", str(self.certificate), "-pubkey", "-noout"], capture_output=True, check=True
        ).stdout
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-outform", "der"], input=key, capture_output=True, check=True
        )
        digest = subprocess.run(
            ["openssl", "dgst", "-sha256", "-binary"], input=der.stdout, capture_output=True, check=True
        )
        return base64.b64encode(digest.stdout).decode()

    def stored_seg(self, study: str, path: Path) -> Path:
        """The one DICOM SEG Orthanc holds in ``study``, downloaded to ``path``."""
        query = json.dumps({"Level": "Instance", "Query": {"StudyInstanceUID": study, "Modality": "SEG"}}).encode()
        req = urllib.request.Request(f"{self.orthanc}/tools/find", data=query, method="POST", headers=self.orthanc_auth)
        with urllib.request.urlopen(req, timeout=30) as r:
            (instance,) = json.loads(r.read())
        req = urllib.request.Request(f"{self.orthanc}/instances/{instance}/file", headers=self.orthanc_auth)
        with urllib.request.urlopen(req, timeout=30) as r:
            path.write_bytes(r.read())
        return path

    def audit(self) -> list[dict]:
        path = self.folder / "logs" / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def missing(tools: tuple[str, ...] = ("nginx", "openssl")) -> str:
    """Why the reading room cannot run here ("" when it can): its Debian tools, Orthanc and its plugins."""
    packages = {"nginx": "nginx-light", "openssl": "openssl", "dciodvfy": "dicom3tools"}
    for tool in tools:
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian: apt-get install {packages[tool]}; .ci/run installs it)"
    return pacs.missing() or pacs.missing_transcoding()


def basic(user: str | None, password: str | None = None) -> dict:
    if user is None:
        return {}
    secret = PASSWORDS[user] if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def request(
    room: Room, path: str, user: str | None = None, method: str = "GET", data: bytes | None = None, headers=None
) -> tuple[int, bytes]:
    """(status, body) of one HTTPS request to the room, signed in as ``user`` (None: anonymous)."""
    req = urllib.request.Request(room.url + path, data=data, method=method, headers={**basic(user), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=300, context=room.context()) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart_label(png: bytes) -> tuple[bytes, dict]:
    """A final label as OHIF's MONAI Label panel PUTs it (multipart form, field ``label``)."""
    boundary = "spcxr-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="label"; filename="label.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


def run_command(
    folder: Path, *args: str, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(label_python()), str(COMMAND), "--folder", str(folder), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def reading_room(bundles: dict, files: dict[str, bytes], folder: Path) -> Iterator[Room]:
    """Readers alice and bob added, the room started on ``0.0.0.0:<free port>`` with ``bundles``, ``files``
    (DICOM bytes by name) stored in its Orthanc; stopped at the end."""
    for user, password in PASSWORDS.items():
        added = run_command(folder, "users", "add", user, "--password-stdin", stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    port = free_port()
    started = run_command(
        folder,
        "start",
        "--listen",
        f"0.0.0.0:{port}",
        "--python",
        str(label_python()),
        "--bundles",
        *[str(b) for b in bundles.values()],
    )
    if started.returncode != 0:
        run_command(folder, "stop")
        raise AssertionError(f"reading room did not start:\n{started.stdout}\n{started.stderr}")
    try:
        state = json.loads((folder / "state.json").read_text())
        config = json.loads((folder / "orthanc" / "orthanc.json").read_text())
        ((user, password),) = config["RegisteredUsers"].items()
        room = Room(
            url=state["url"],
            folder=folder,
            port=port,
            certificate=Path(state["certificate"]),
            fingerprint=state["fingerprint"],
            orthanc=state["parts"]["orthanc"]["url"],
            orthanc_auth={"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()},
        )
        assert state["fingerprint"] in started.stdout and room.url in started.stdout  # printed for the user
        for name, data in files.items():
            req = urllib.request.Request(
                f"{room.orthanc}/instances",
                data=data,
                method="POST",
                headers={"Content-Type": "application/dicom", **room.orthanc_auth},
            )
            with urllib.request.urlopen(req, timeout=60) as r:
                assert json.loads(r.read())["Status"] == "Success"
            room.uploaded[name] = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        yield room
    finally:
        stopped = run_command(folder, "stop")
        print(stopped.stdout, stopped.stderr, file=sys.stderr)
