"""A throwaway Orthanc PACS for tests: Debian's ``orthanc`` + ``orthanc-dicomweb``, on 127.0.0.1, with its
storage in a temporary folder, stopped at the end."""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from processes import free_port, stop, wait_for_http

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
# Decodes JPEG 2000 for Orthanc: MONAI Label's DICOMweb proxy drops the viewer's Accept header, so Orthanc
# must send OHIF every frame transcoded to uncompressed, which its own codecs cannot do for JPEG 2000
GDCM_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancGdcm.so")


def missing() -> str:
    """Why Orthanc with DICOMweb cannot run here ("" when it can)."""
    if not shutil.which("Orthanc"):
        return "Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb)"
    if not DICOMWEB_PLUGIN.is_file():
        return f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}; apt-get install orthanc-dicomweb)"
    return ""


def missing_transcoding() -> str:
    """Why Orthanc cannot transcode JPEG 2000 here ("" when it can)."""
    if not GDCM_PLUGIN.is_file():
        return f"Orthanc's GDCM plugin is not installed ({GDCM_PLUGIN}; apt-get install orthanc-gdcm)"
    return ""


@contextlib.contextmanager
def orthanc(folder: Path, timeout: float = 60) -> Iterator[str]:
    """Run Orthanc with its index and storage under ``folder``; yields its REST base URL.

    DICOMweb is at ``<url>/dicom-web``; the DICOM (DIMSE) server is off, remote access refused. The GDCM
    plugin is loaded where it is installed.
    """
    port = free_port()
    config = {
        "Name": "spcxr-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(p) for p in (DICOMWEB_PLUGIN, GDCM_PLUGIN) if p.is_file()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "w")
    proc = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, f"{url}/system", folder / "orthanc.log", "Orthanc", timeout)
        yield url
    finally:
        stop(proc)
        log.close()


def upload(url: str, dicom: bytes) -> dict:
    """Store one DICOM file over Orthanc's REST API; returns Orthanc's answer (ID, ParentSeries, ...)."""
    request = urllib.request.Request(
        f"{url}/instances", data=dicom, method="POST", headers={"Content-Type": "application/dicom"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def get_bytes(url: str) -> bytes:
    """GET, gunzipped when the server compressed it (Orthanc does; MONAI Label's proxy passes it on)."""
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
        return gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body


def get_json(url: str) -> object:
    return json.loads(get_bytes(url))
