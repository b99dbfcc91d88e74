"""The reading room in a real browser: MONAI Label's bundled OHIF viewer, in headless Chromium (Debian's
package, driven by Playwright), over Orthanc's radiographs through the MONAI Label server, all of it reached as a
reader reaches it: through the reading room's nginx (``monailabel_app/reading_room.py``), over HTTPS with the
room's self-signed certificate trusted for the test (its public key pinned in Chromium), signed in as alice.

It checks what a radiologist sees: the study list shows the CR and the DX study; the CR is drawn (the
viewport correlates with the image's own pixels, placed where Cornerstone says it put them); after lung
segmentation (through the API, as the MONAI Label panel does, stored back as DICOM SEG) and a reload,
the SEG is drawn over the radiograph inside the lung fields, where the model's mask is and nowhere else, and
the SEG stored in the PACS names alice as its content creator.
Screenshots are kept in ``$SPCXR_TEST_ARTIFACTS`` (default ``test-artifacts/``) / ``ohif``.

Skipped, with the reason, only where Chromium, Playwright, Orthanc or its GDCM plugin is missing
or nginx (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import reading_room_server as rooms
from label_server import REPO_ROOT
from PIL import Image
from reading_room_server import PASSWORDS, multipart_label, request

from spcxr_monai.transforms import LoadCXR

pytestmark = pytest.mark.monailabel

CHROMIUM = Path(os.environ.get("SPCXR_CHROMIUM", "/usr/bin/chromium"))
# Chromium as root in a container with no network: no sandbox, no GPU (WebGL through SwiftShader),
# no calls home (refused here, many at a time)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("SPCXR_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "ohif"
VIEWPORT = {"width": 1280, "height": 900}
FILES = {"CR": "RG1_J2KI.dcm", "DX": "966_fixed.dcm"}
LOAD_TIMEOUT_MS = 90_000

# Where Cornerstone drew the image: the canvas positions of the centres of the first and last pixels.
IMAGE_ON_CANVAS = """() => {
  const viewport = window.cornerstone.getRenderingEngines()[0].getViewports()
      .find(v => v.getCurrentImageId && v.getCurrentImageId());
  const {imageData, dimensions} = viewport.getImageData();
  const first = viewport.worldToCanvas(imageData.indexToWorld([0, 0, 0]));
  const last = viewport.worldToCanvas(imageData.indexToWorld([dimensions[0] - 1, dimensions[1] - 1, 0]));
  const box = viewport.canvas.getBoundingClientRect();
  return {first, last, cols: dimensions[0], rows: dimensions[1], left: box.left, top: box.top,
          width: box.width, height: box.height, ratio: window.devicePixelRatio};
}"""


def _missing() -> str:
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; its browser download is not needed)"
    return rooms.missing()


@pytest.fixture(scope="module")
def room(trained, dicom_dir, tmp_path_factory):
    """The reading room with the CR and DX studies in its Orthanc."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    files = {name: (dicom_dir / name).read_bytes() for name in FILES.values()}
    with rooms.reading_room(trained[1], files, tmp_path_factory.mktemp("reading_room")) as running:
        yield running


@pytest.fixture(scope="module")
def reading_room(room):
    """(the room's HTTPS URL, {modality: DICOM header})."""
    return room.url, {modality: room.uploaded[name] for modality, name in FILES.items()}


@pytest.fixture(scope="module")
def browser(room):
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    trusted = f"--ignore-certificate-errors-spki-list={room.spki_sha256()}"  # this certificate, no other
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, trusted])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    credentials = {"username": "alice", "password": PASSWORDS["alice"]}
    context = browser.new_context(viewport=VIEWPORT, http_credentials=credentials)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    yield page
    context.close()


def _open_viewer(page, url: str, study_uid: str) -> None:
    """The study in OHIF's viewer, the notice banner dismissed, the first image drawn."""
    page.goto(f"{url}/ohif/viewer?StudyInstanceUIDs={study_uid}")
    page.locator("[data-cy='confirm-and-hide-button']").click(timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(
        "() => window.cornerstone && window.cornerstone.getRenderingEngines().length > 0 && "
        "window.cornerstone.getRenderingEngines()[0].getViewports().some(v => v.getCurrentImageId && "
        "v.getCurrentImageId() && v.getImageData && v.getImageData())",
        timeout=LOAD_TIMEOUT_MS,
    )
    page.wait_for_timeout(2000)  # the first frame's render after its data arrives


def _viewport_rgb(page, name: str) -> tuple[np.ndarray, dict]:
    """A screenshot of the image's canvas (kept as ``name``.png) and where the image lies on it."""
    geometry = page.evaluate(IMAGE_ON_CANVAS)
    clip = {k: geometry[k] for k in ("width", "height")} | {"x": geometry["left"], "y": geometry["top"]}
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), clip=clip)
    return np.asarray(Image.open(ARTIFACTS / f"{name}.png").convert("RGB")).astype(np.float32), geometry


def _image_indices(geometry: dict, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every screenshot pixel, the image pixel under it (row, col) and whether it is on the image."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5  # centres of the screenshot's pixels, CSS px
    first, last = geometry["first"], geometry["last"]
    col = (xs - first[0]) / (last[0] - first[0]) * (geometry["cols"] - 1)
    row = (ys - first[1]) / (last[1] - first[1]) * (geometry["rows"] - 1)
    col, row = np.rint(col).astype(int), np.rint(row).astype(int)
    inside = (col >= 0) & (col < geometry["cols"]) & (row >= 0) & (row < geometry["rows"])
    return row.clip(0, geometry["rows"] - 1), col.clip(0, geometry["cols"] - 1), inside


def _record(check: str, **figures: float) -> None:
    """The figures behind a check, beside its screenshot (``checks.json``)."""
    path = ARTIFACTS / "checks.json"
    checks = json.loads(path.read_text()) if path.exists() else {}
    checks[check] = {k: round(float(v), 4) for k, v in figures.items()}
    path.write_text(json.dumps(checks, indent=1))


def test_study_list_shows_the_cr_and_dx_studies(reading_room, page):
    url, headers = reading_room
    page.goto(f"{url}/ohif/")
    rows = page.locator("tr[data-cy^='studyRow-']")
    rows.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "study_list.png"))
    shown = {
        rows.nth(i).get_attribute("data-cy").removeprefix("studyRow-"): rows.nth(i).inner_text()
        for i in range(rows.count())
    }
    assert set(shown) == {str(h.StudyInstanceUID) for h in headers.values()}
    for modality, header in headers.items():
        assert modality in shown[str(header.StudyInstanceUID)].replace("\\", " ").split(), shown  # "CR\\SEG" later


def test_the_cr_is_drawn_as_its_pixels(reading_room, page, dicom_dir):
    url, headers = reading_room
    _open_viewer(page, url, headers["CR"].StudyInstanceUID)
    rgb, geometry = _viewport_rgb(page, "cr")
    assert (geometry["rows"], geometry["cols"]) == (headers["CR"].Rows, headers["CR"].Columns)
    grey = rgb.mean(axis=2)
    row, col, inside = _image_indices(geometry, grey.shape)
    assert inside.mean() > 0.3, geometry  # the image fills the viewport, not a corner of it
    assert grey[inside].std() > 20  # not blank
    image = LoadCXR()(str(dicom_dir / FILES["CR"]))[0].numpy()  # display order, air dark
    r = np.corrcoef(grey[inside], image[row[inside], col[inside]])[0, 1]
    _record("cr", correlation_with_image=r, image_share_of_viewport=inside.mean())
    assert r > 0.9, f"the viewport correlates {r:.3f} with the image"
    assert not page.errors, page.errors


def test_the_lung_seg_is_drawn_inside_the_lung_fields(room, reading_room, page, tmp_path):
    url, headers = reading_room
    series = str(headers["CR"].SeriesInstanceUID)
    path = f"/infer/lung_segmentation?image={series}&output=image"
    status, mask_png = request(room, path, "alice", method="POST", data=b"")  # what the panel runs
    assert status == 200
    (ARTIFACTS / "cr_model_mask.png").write_bytes(mask_png)
    mask = np.asarray(Image.open(ARTIFACTS / "cr_model_mask.png")) > 0
    body, form = multipart_label(mask_png)
    status, answer = request(room, f"/datastore/label?image={series}&tag=final", "alice", "PUT", body, form)
    assert status == 200 and json.loads(answer)["image"] == series  # stored as SEG, signed by alice
    _check_the_stored_seg_names(room, str(headers["CR"].StudyInstanceUID), "alice", tmp_path)

    _open_viewer(page, url, headers["CR"].StudyInstanceUID)  # the reload: the SEG is in the study now
    seg = page.locator("[data-cy^='study-browser-thumbnail']", has_text="SEG")
    seg.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    seg.first.dblclick()
    page.get_by_role("button", name="Yes").click(timeout=LOAD_TIMEOUT_MS)  # "open this Segmentation?"
    page.wait_for_function(
        "() => window.services.segmentationService.getSegmentations().length > 0", timeout=LOAD_TIMEOUT_MS
    )
    page.wait_for_timeout(2000)
    rgb, geometry = _viewport_rgb(page, "cr_with_seg")
    row, col, inside = _image_indices(geometry, rgb.shape[:2])
    overlay = (rgb[..., 0] - rgb[..., 1:].max(axis=2) > 40) & inside  # the segment's colour over grey
    under = mask[row, col] & inside
    assert overlay.sum() > 0.05 * inside.sum(), "no overlay drawn"
    on_mask = (overlay & under).sum() / overlay.sum()
    covered = (overlay & under).sum() / under.sum()
    _record("seg", overlay_on_model_mask=on_mask, model_mask_covered=covered)
    # the outline is drawn on the mask's border, so a thin band outside it is allowed
    assert on_mask > 0.97, f"{1 - on_mask:.1%} of the overlay lies outside the model's lung mask"
    assert covered > 0.9, f"the overlay covers {covered:.1%} of the model's lung mask"
    assert not page.errors, page.errors


def _check_the_stored_seg_names(room, study: str, reader: str, tmp_path: Path) -> None:
    """The SEG in Orthanc for ``study`` has ``reader`` as its content creator."""
    seg = pydicom.dcmread(room.stored_seg(study, tmp_path / "seg.dcm"), stop_before_pixels=True)
    assert str(seg.ContentCreatorName) == reader and f"reader {reader}" in seg.SeriesDescription
