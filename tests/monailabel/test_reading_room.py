"""The reading room beyond localhost (``monailabel_app/reading_room.py``): one command starts Orthanc, MONAI Label
and nginx; nginx is the only socket on the listening address, TLS only, nobody anonymous; every inference and
saved label is audited with its reader, and every SEG stored in the PACS is signed by its reader and valid to
``dciodvfy``. (The browser's checks through the same proxy: test_ohif_browser.py.)"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pydicom
import pytest
import reading_room_server as rooms
from label_server import APP, with_new_uids
from PIL import Image
from reading_room_server import PASSWORDS, multipart_label, reading_room, request, run_command

sys.path.insert(0, str(APP))
import loadtest

pytestmark = pytest.mark.monailabel

FILES = {"CR": "RG1_J2KI.dcm", "DX": "966_fixed.dcm"}
# every route the proxy serves, as a reader's browser or a script would call it
ROUTES = [
    ("GET", "/"),
    ("GET", "/ohif/"),
    ("GET", "/ohif/viewer"),
    ("GET", "/info/"),
    ("GET", "/datastore/?output=all"),
    ("GET", "/datastore/image?image=any"),
    ("PUT", "/datastore/label?image=any&tag=final"),
    ("POST", "/infer/lung_segmentation?image=any&output=image"),
    ("POST", "/infer/cxr_classification?image=any"),
    ("POST", "/activelearning/random"),
    ("GET", "/proxy/dicom/wado/studies"),
    ("GET", "/proxy/dicom/qido/studies"),
    ("GET", "/logs/"),
    ("GET", "/model/"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/system"),  # Orthanc's REST API, were it proxied
    ("GET", "/dicom-web/studies"),  # Orthanc's DICOMweb, idem
    ("GET", "/instances"),
]


def _missing() -> str:
    return rooms.missing(("nginx", "openssl", "dciodvfy"))


@pytest.fixture(scope="module")
def room(trained, dicom_dir, tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    files = {name: with_new_uids(dicom_dir / name) for name in FILES.values()}
    with reading_room(trained[1], files, tmp_path_factory.mktemp("reading_room")) as running:
        yield running


def _address() -> str:
    """This machine's non-loopback address: how another workstation reaches the listening socket ("" if none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: only the route's source address is read
            address = s.getsockname()[0]
    except OSError:  # no route at all
        return ""
    return "" if address.startswith("127.") else address


def test_nobody_anonymous_and_no_wrong_password_gets_an_answer(room):
    answered = []
    for method, path in ROUTES:
        for user, password in ((None, None), ("alice", "not-her-password"), ("mallory", "anything-at-all")):
            headers = {}
            if user:
                headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
            status, body = request(room, path, method=method, data=b"" if method != "GET" else None, headers=headers)
            if status != 401 or b"spcxr" in body or b"StudyInstanceUID" in body:
                answered.append((method, path, user, status))
    print(f"{len(ROUTES) * 3} anonymous or wrong-password requests over {len(ROUTES)} routes: {len(answered)} answered")
    assert answered == []


def test_plain_http_gets_no_page_and_the_signed_in_reader_does(room):
    with pytest.raises(urllib.error.HTTPError) as redirect:  # urllib does not follow a redirect to https here
        opener = urllib.request.build_opener(_NoRedirect)
        opener.open(f"http://127.0.0.1:{room.port}/info/", timeout=10)
    assert redirect.value.code == 301 and redirect.value.headers["Location"].startswith("https://")
    assert b"spcxr" not in redirect.value.read()
    status, body = request(room, "/info/", "alice")
    assert status == 200 and set(json.loads(body)["models"]) == {"lung_segmentation", "cxr_classification"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_orthanc_and_monailabel_are_reached_only_through_the_proxy(room):
    state = json.loads((room.folder / "state.json").read_text())
    ml_port = int(state["parts"]["monailabel"]["url"].rsplit(":", 1)[1])
    orthanc_port = int(room.orthanc.rsplit(":", 1)[1])
    address = _address()
    if address:  # a machine with a network interface besides loopback (CI's and this one have one)
        with pytest.raises(OSError):  # MONAI Label listens on loopback only
            socket.create_connection((address, ml_port), timeout=5).close()
        # Orthanc 1.10 has no bind address: from another address it refuses, with or without its credentials
        for headers in ({}, room.orthanc_auth):
            req = urllib.request.Request(f"http://{address}:{orthanc_port}/system", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=10)
            assert refused.value.code in (401, 403)
    # on the server itself, MONAI Label's port answers nobody who comes without the proxy's token
    req = urllib.request.Request(f"http://127.0.0.1:{ml_port}/info/", headers={"X-Forwarded-User": "alice"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 401
    # the DICOM port stays closed
    assert json.loads((room.folder / "orthanc" / "orthanc.json").read_text())["DicomServerEnabled"] is False
    # the listening address: the proxy, TLS, and the room's certificate
    status, _ = request(room, "/info/", "alice")
    assert status == 200


def test_the_viewer_gets_frames_as_stored_and_jpeg_2000_never_brings_the_pacs_down(room, dicom_dir):
    """OHIF's frame requests reach Orthanc with their Accept header (``transfer-syntax=*``): the CR's JPEG 2000
    frame comes back untranscoded, the file's own codestream, as often as it is asked for, and Orthanc lives on.
    (Through MONAI Label's proxy the header is dropped and Orthanc transcodes: Debian's Orthanc 1.10 crashed so
    in CI on 2026-12-05, and within 20 such requests in each of 6 trials after.)"""
    header = room.uploaded[FILES["CR"]]
    stored = pydicom.dcmread(dicom_dir / FILES["CR"])
    codestream = next(pydicom.encaps.generate_frames(stored.PixelData, number_of_frames=1))
    assert codestream[:4] == b"\xff\x4f\xff\x51"  # JPEG 2000: SOC, SIZ
    path = (
        f"/proxy/dicom/wado/studies/{header.StudyInstanceUID}/series/{header.SeriesInstanceUID}"
        f"/instances/{header.SOPInstanceUID}/frames/1"
    )
    accept = {"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}
    for _ in range(20):
        status, body = request(room, path, "alice", headers=accept)
        assert status == 200 and codestream.rstrip(b"\0") in body and len(body) < len(codestream) + 1000
    assert request(room, "/proxy/dicom/qido/studies", "alice")[0] == 200  # still serving


def test_each_readers_labels_carry_their_names_and_a_forged_name_is_never_believed(room, tmp_path):
    series = {m: str(room.uploaded[name].SeriesInstanceUID) for m, name in FILES.items()}
    status, mask_png = request(
        room,
        f"/infer/lung_segmentation?image={series['CR']}&output=image",
        "alice",
        method="POST",
        data=b"",
        headers={"X-Forwarded-User": "mallory"},  # a client claiming to be someone else
    )
    assert status == 200
    mask = np.asarray(Image.open(io.BytesIO(mask_png))) > 0
    assert mask.shape == (room.uploaded[FILES["CR"]].Rows, room.uploaded[FILES["CR"]].Columns) and mask.any()
    for reader, modality in (("alice", "CR"), ("bob", "DX")):
        if modality == "DX":
            status, png = request(
                room, f"/infer/lung_segmentation?image={series['DX']}&output=image", reader, "POST", b""
            )
            assert status == 200
        else:
            png = mask_png
        body, headers = multipart_label(png)
        status, answer = request(
            room,
            f"/datastore/label?image={series[modality]}&tag=final",
            reader,
            method="PUT",
            data=body,
            headers={**headers, "X-Forwarded-User": "mallory"},
        )
        assert status == 200, answer
    audit = room.audit()
    assert audit and {line["user"] for line in audit} <= {"alice", "bob"}  # never mallory
    infers = [line for line in audit if line["action"] == "infer"]
    assert [(line["user"], line["series"], line["result"]) for line in infers] == [
        ("alice", series["CR"], "answered"),
        ("bob", series["DX"], "answered"),
    ]
    assert infers[0]["study"] == str(room.uploaded[FILES["CR"]].StudyInstanceUID) and infers[0]["model"]
    saves = {(line["user"], line["series"]) for line in audit if line["action"] == "save_label"}
    assert saves == {("alice", series["CR"]), ("bob", series["DX"])}
    assert all(line["result"].startswith("stored as SEG") for line in audit if line["action"] == "save_label")
    # the SEGs in the PACS: signed by their readers, valid to dciodvfy
    for reader, modality in (("alice", "CR"), ("bob", "DX")):
        study = str(room.uploaded[FILES[modality]].StudyInstanceUID)
        file = room.stored_seg(study, tmp_path / f"{reader}_seg.dcm")
        seg = pydicom.dcmread(file, stop_before_pixels=True)
        assert str(seg.ContentCreatorName) == reader and f"reader {reader}" in seg.SeriesDescription
        report = subprocess.run(["dciodvfy", str(file)], capture_output=True, text=True)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], (reader, errors)


def test_several_readers_at_once_through_the_proxy_get_their_own_answers(room):
    """monailabel_app/loadtest.py through nginx with sign-in: 4 readers x 3 requests, both models mixed, on the CR
    and the DX series of the PACS (the figures beside the direct ones: benchmarks/monailabel_load.py)."""
    images = [str(room.uploaded[name].SeriesInstanceUID) for name in FILES.values()]
    loadtest.use_credentials("bob", PASSWORDS["bob"], str(room.certificate))
    try:
        result = loadtest.run(room.url, images, clients=4, requests=3)
    finally:
        loadtest.use_credentials(None)
    print(f"through the proxy: p50 {result.p50_seconds:.2f} s, p95 {result.p95_seconds:.2f} s")
    assert (result.answered, result.failed, result.mixed_up) == (12, 0, 0), result.failures


def test_stop_ends_every_part(dicom_dir, trained, tmp_path):
    """Its own room: started, then stopped; nothing is left listening, status says so."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    with reading_room(trained[1], {}, tmp_path / "room") as running:
        state = json.loads((running.folder / "state.json").read_text())
        assert run_command(running.folder, "status").returncode == 0
    pids = [part["pid"] for part in state["parts"].values()]
    assert all(not _alive(pid) for pid in pids)
    assert run_command(tmp_path / "room", "status").returncode == 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=5).close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
