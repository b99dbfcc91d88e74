"""Several users at once against a running MONAI Label server of this app.

    python monailabel_app/loadtest.py --url http://127.0.0.1:8000 --images ID1,ID2,ID3 \
        [--clients 8] [--requests 10] [--pid SERVER_PID] [--json]
    SPCXR_PASSWORD=... python monailabel_app/loadtest.py --url https://host:8443 --user alice \
        --cafile reading-room/tls/cert.pem --images ...     # through the reading room's proxy

Each image is first inferred once by one client (the reference answers); after a warm-up round (each
client both models once, not counted), ``clients`` threads each send ``requests`` ``/infer`` requests, segmentation and classification mixed,
images in a different order per client. Every answer must be 200 and equal the reference for its image
(a mixed-up answer is one that does not), or be a refusal (429 / 503) that says when to retry
(``Retry-After``). Meanwhile a viewer-like ``GET /info/`` every 0.25 s measures whether light requests
wait behind the inferences. With ``--pid`` the server's resident memory (with its child processes) is read after
the warm-up and after the run. Through the reading room (``reading_room.py``): ``--user`` signs in (HTTP
basic, the password from ``$SPCXR_PASSWORD``) and ``--cafile`` trusts its certificate. Standard library only, so
it runs from any environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass, field

MODELS = ("lung_segmentation", "cxr_classification")


def use_credentials(user: str | None, password: str = "", cafile: str | None = None) -> None:
    """Send every request of this module signed in as ``user`` (HTTP basic) and trust ``cafile`` for HTTPS, as a
    reader's browser does through the reading room; ``user`` None: back to plain requests."""
    handlers: list = [urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile))] if cafile else []
    opener = urllib.request.build_opener(*handlers)
    if user is not None:
        opener.addheaders = [("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())]
    urllib.request.install_opener(opener)


@dataclass
class Answer:
    """One ``/infer`` request as a client saw it."""

    client: int
    model: str
    image: str
    status: int  # HTTP status; 0 when no answer came (connection error, client timeout)
    seconds: float
    digest: str = ""  # of the answer's content (segmentation: the mask's pixels; classification: scores + gate)
    retry_after: str | None = None
    error: str = ""


def _png_pixels(png: bytes) -> bytes:
    """The decompressed image data of a PNG (what the mask is, whatever the encoder's settings)."""
    pos, chunks, header = 8, [], b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    return header + zlib.decompress(b"".join(chunks))


def digest(model: str, body: bytes) -> str:
    """What must not change between a lone request and the same request under load."""
    if model == "lung_segmentation":
        content = _png_pixels(body)
    else:
        result = json.loads(body)
        scores = sorted((p["label"], round(p["score"], 5)) for p in result["prediction"])
        content = json.dumps({"scores": scores, "gate_ok": result.get("gate", {}).get("ok")}).encode()
    return hashlib.sha256(content).hexdigest()


def infer(url: str, model: str, image: str, client: int = -1, timeout: float = 300) -> Answer:
    """POST one inference, as a viewer does; the mask as PNG (segmentation) or the JSON (classification)."""
    output = "image" if model == "lung_segmentation" else "json"
    request = urllib.request.Request(f"{url}/infer/{model}?image={image}&output={output}", data=b"", method="POST")
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            body = r.read()
            return Answer(client, model, image, r.status, time.perf_counter() - start, digest(model, body))
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        return Answer(
            client,
            model,
            image,
            e.code,
            time.perf_counter() - start,
            retry_after=e.headers.get("Retry-After"),
            error=detail,
        )
    except (urllib.error.URLError, OSError) as e:
        return Answer(client, model, image, 0, time.perf_counter() - start, error=repr(e))


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def plan(images: list[str], clients: int, requests: int) -> list[list[tuple[str, str]]]:
    """Each client's (model, image) requests: both models alternating, images rotated per client."""
    return [
        [(MODELS[(c + i) % 2], images[(c + i // 2) % len(images)]) for i in range(requests)] for c in range(clients)
    ]


@dataclass
class LoadResult:
    clients: int
    requests: int
    wall_seconds: float
    answered: int
    refused: int  # 429 / 503 with Retry-After
    failed: int  # anything else: errors, no answer, a refusal without Retry-After
    mixed_up: int  # 200 but not the reference answer for that image
    p50_seconds: float
    p95_seconds: float
    throughput_per_second: float
    viewer_p95_seconds: float  # GET /info/ (what a viewer also waits for) during the run
    rss_after_warmup_mib: float | None = None
    rss_after_run_mib: float | None = None
    failures: list[dict] = field(default_factory=list)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _round(url: str, todo: list[list[tuple[str, str]]], timeout: float) -> list[Answer]:
    """Every client's requests at once, one client per thread; the answers in the order they came."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def client(c: int, requests: list[tuple[str, str]]) -> None:
        for model, image in requests:
            answer = infer(url, model, image, client=c, timeout=timeout)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=(c, requests)) for c, requests in enumerate(todo)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def run(
    url: str, images: list[str], clients: int = 8, requests: int = 10, pid: int | None = None, timeout: float = 300
) -> LoadResult:
    """Reference answers one at a time; a warm-up round (each client both models once, not counted: the
    server's threads and their memory pools come up); then ``clients`` x ``requests`` at once."""
    reference = {}
    for model in MODELS:
        for image in images:
            answer = infer(url, model, image, timeout=timeout)
            if answer.status != 200:
                raise RuntimeError(f"the lone request {model} on {image} failed: {answer.status} {answer.error}")
            reference[model, image] = answer.digest
    _round(url, plan(images, clients, len(MODELS)), timeout)
    rss_warm = resident_mib(pid) if pid else None

    viewer: list[float] = []
    done = threading.Event()

    def probe() -> None:  # a viewer's light request, every 0.25 s: does it wait behind the inferences?
        while not done.is_set():
            start = time.perf_counter()
            urllib.request.urlopen(f"{url}/info/", timeout=timeout).read()
            viewer.append(time.perf_counter() - start)
            done.wait(0.25)

    prober = threading.Thread(target=probe)
    start = time.perf_counter()
    prober.start()
    answers = _round(url, plan(images, clients, requests), timeout)
    wall = time.perf_counter() - start
    done.set()
    prober.join()

    ok = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status in (429, 503) and a.retry_after]
    mixed = [a for a in ok if a.digest != reference[a.model, a.image]]
    failed = [a for a in answers if a.status != 200 and a not in refused]
    latencies = [a.seconds for a in ok]
    return LoadResult(
        clients=clients,
        requests=requests,
        wall_seconds=wall,
        answered=len(ok),
        refused=len(refused),
        failed=len(failed),
        mixed_up=len(mixed),
        p50_seconds=_quantile(latencies, 0.5),
        p95_seconds=_quantile(latencies, 0.95),
        throughput_per_second=len(ok) / wall,
        viewer_p95_seconds=_quantile(viewer, 0.95),
        rss_after_warmup_mib=rss_warm,
        rss_after_run_mib=resident_mib(pid) if pid else None,
        failures=[asdict(a) for a in failed + mixed][:20],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--images", required=True, help="comma-separated study ids the server can read")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--pid", type=int, help="the server's process id, to read its resident memory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--user", help="sign in as this reader (password from $SPCXR_PASSWORD)")
    parser.add_argument("--cafile", help="the certificate (chain) to trust for https")
    args = parser.parse_args(argv)
    if args.user or args.cafile:
        use_credentials(args.user, os.environ.get("SPCXR_PASSWORD", ""), args.cafile)
    result = run(args.url, [i for i in args.images.split(",") if i], args.clients, args.requests, args.pid)
    if args.json:
        print(json.dumps(asdict(result), indent=1))
    else:
        print(
            f"{result.answered}/{args.clients * args.requests} answered, {result.refused} refused (Retry-After), "
            f"{result.failed} failed, {result.mixed_up} mixed up; p50 {result.p50_seconds:.2f} s, "
            f"p95 {result.p95_seconds:.2f} s, {result.throughput_per_second:.2f} answers/s; "
            f"GET /info/ p95 {result.viewer_p95_seconds:.2f} s"
        )
        if result.rss_after_warmup_mib:
            print(
                f"resident memory {result.rss_after_warmup_mib:.0f} MiB after warm-up, "
                f"{result.rss_after_run_mib:.0f} MiB after the run"
            )
    return int(result.failed > 0 or result.mixed_up > 0)


if __name__ == "__main__":
    sys.exit(main())
