"""Several users on one MONAI Label server of the app: latency, throughput, memory per concurrency setting.

    python benchmarks/monailabel_load.py [--bundles DIR] [--clients 8] [--requests 10] \
        [--out benchmarks/results/monailabel_load_cpu.md]

Needs the MONAI Label environment (``bash monailabel_app/install.sh``) and ``../shared/data``. The two
bundles are trained briefly as in the test suite (tiny ViT, 64 px; or taken from ``--bundles``, a folder
holding ``spcxr_lung_segmentation`` and ``spcxr_cxr_classification`` trained before), served over a
folder of 6 held-out CXRs (5 PNGs, one 1955 x 1841 JPEG 2000 DICOM). For each setting a fresh server gets
``monailabel_app/loadtest.py``: a lone request per (model, image) as reference, a warm-up round, then
``clients`` x ``requests`` at once, segmentation and classification mixed, while a viewer-like
``GET /info/`` runs every 0.25 s. ``--proxy`` adds the reading room (``monailabel_app/reading_room.py``: nginx
with TLS and basic sign-in in front of the app's default setting, over the same folder of studies), the clients
signed in over HTTPS, beside the same setting reached directly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "monailabel"), str(REPO / "tests"), str(REPO / "monailabel_app")]

import loadtest  # noqa: E402
from label_server import server, train_bundles  # noqa: E402
from reading_room_server import PASSWORDS, run_command  # noqa: E402

PROXIED = "this app's default, through the reading room's nginx (TLS, basic sign-in)"

SETTINGS = {  # name: (environment, start_server arguments)
    "MONAI Label 0.8's own (on the event loop, inline)": ({}, ("--conf", "monailabel_inference", "true")),
    "this app's default (worker threads, 2 inferences at once, 60 s timeout)": ({}, ()),
    "1 inference at once": ({"MONAI_LABEL_INFER_CONCURRENCY": "1"}, ()),
    "4 inferences at once": ({"MONAI_LABEL_INFER_CONCURRENCY": "4"}, ()),
}
# not a setting: ``start_server --workers 2`` (uvicorn processes) with MONAI Label 0.8.5: every worker process
# dies as it starts, without a message, and the parent restarts it for ever (seen with this app)


def _studies(shared: Path, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    val = shared / "covid-qu-ex" / "val"
    for cls, n in (("covid", 2), ("pneumonia", 1), ("normal", 2)):
        for name in sorted(os.listdir(val / cls / "images"))[:n]:
            shutil.copy(val / cls / "images" / name, folder / name)
    shutil.copy(shared / "dicom" / "RG1_J2KI.dcm", folder / "RG1_J2KI.dcm")
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".png", ".dcm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", type=Path, help="folder with the two trained bundles (default: train them)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--settings", nargs="*", type=int, help="indices of SETTINGS to run (default: all)")
    parser.add_argument("--proxy", action="store_true", help="also through the reading room's proxy")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "monailabel_load_cpu.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="monailabel_load_"))
    if args.bundles:
        bundles = {name: args.bundles / name for name in ("spcxr_lung_segmentation", "spcxr_cxr_classification")}
    else:
        bundles = train_bundles(work, args.data)
    images = _studies(args.data, work / "studies")
    chosen = [list(SETTINGS)[i] for i in (args.settings if args.settings is not None else range(len(SETTINGS)))]
    rows = []
    for i, name in enumerate(chosen):
        env, start_args = SETTINGS[name]
        with server(str(work / "studies"), bundles, work, f"server_{i}", env, start_args) as (url, proc):
            result = loadtest.run(url, images, args.clients, args.requests, pid=proc.pid)
        rows.append((name, result))
        print(name, asdict(result), flush=True)
    if args.proxy:
        rows.append((PROXIED, _through_the_proxy(work, bundles, images, args)))
        print(PROXIED, asdict(rows[-1][1]), flush=True)

    lines = [
        "# Several users on one MONAI Label server (`benchmarks/monailabel_load.py`)",
        "",
        f"`python benchmarks/monailabel_load.py {' '.join(sys.argv[1:])}`; "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), MONAI Label 0.8.5, the "
        "bundles trained as in the tests (tiny ViT, 64 px); 6 held-out studies (5 PNGs of 256 px, one 1955 x 1841 "
        "JPEG 2000 DICOM). Each setting: a fresh server, a lone request per (model, image) first (the reference "
        f"answers), a warm-up round ({args.clients} clients, both models once), then {args.clients} clients x {args.requests} `/infer` requests at once, "
        "segmentation and classification mixed; `GET /info/` every 0.25 s meanwhile (what a viewer's light "
        "requests wait). Latency over answered requests; memory: resident, server and its child processes.",
        "",
        "| setting | answered | refused (Retry-After) | failed | mixed up | p50 s | p95 s | answers/s "
        "| GET /info/ p95 s | RSS after warm-up MiB | after run MiB | growth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        growth = r.rss_after_run_mib / r.rss_after_warmup_mib - 1
        lines.append(
            f"| {name} | {r.answered} | {r.refused} | {r.failed} | {r.mixed_up} | {r.p50_seconds:.2f} | "
            f"{r.p95_seconds:.2f} | {r.throughput_per_second:.2f} | {r.viewer_p95_seconds:.2f} | "
            f"{r.rss_after_warmup_mib:.0f} | {r.rss_after_run_mib:.0f} | {growth:+.1%} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written {args.out}")
    shutil.rmtree(work, ignore_errors=True)


def _through_the_proxy(work: Path, bundles: dict, images: list[str], args: argparse.Namespace) -> loadtest.LoadResult:
    """The reading room over the same studies, the clients signed in as alice over HTTPS."""
    folder = work / "reading_room"
    added = run_command(folder, "users", "add", "alice", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    assert added.returncode == 0, added.stderr
    bundle_args = [str(b) for b in bundles.values()]
    started = run_command(folder, "start", "--studies", str(work / "studies"), "--bundles", *bundle_args)
    if started.returncode != 0:
        raise SystemExit(f"the reading room did not start:\n{started.stderr}")
    try:
        state = json.loads((folder / "state.json").read_text())
        loadtest.use_credentials("alice", PASSWORDS["alice"], state["certificate"])
        return loadtest.run(state["url"], images, args.clients, args.requests, pid=state["parts"]["monailabel"]["pid"])
    finally:
        loadtest.use_credentials(None)
        run_command(folder, "stop")


if __name__ == "__main__":
    main()
