"""The reading room in one command: Orthanc, MONAI Label and OHIF behind nginx, with TLS and sign-in.

Run it with the MONAI Label environment's python (``bash monailabel_app/install.sh``)::

    .venv-label/bin/python monailabel_app/reading_room.py users add alice      # asks for a password
    .venv-label/bin/python monailabel_app/reading_room.py start --listen 0.0.0.0:8443
    .venv-label/bin/python monailabel_app/reading_room.py status
    .venv-label/bin/python monailabel_app/reading_room.py stop

``start`` runs, each in the background with its log under ``<folder>/logs/``:

- **Orthanc** (Debian's, with its DICOMweb and GDCM plugins) on a loopback port, users required (one, for MONAI
  Label, with a password generated at each start), remote access refused, its DICOM port closed unless
  ``--dicom-port`` opens it; its storage under ``<folder>/orthanc/``.
- **MONAI Label** serving this app on a loopback port over Orthanc's DICOMweb, behind
  :class:`lib.identity.ProxyIdentityMiddleware`: a request without the proxy's secret token and a signed-in user
  is answered 401; every inference and saved label goes to ``<folder>/logs/audit.jsonl`` with its reader.
- **nginx** (Debian's) as the only socket on ``--listen``: TLS (``--cert`` / ``--key``, or a self-signed
  certificate made on first start, its SHA-256 fingerprint printed), plain HTTP redirected to HTTPS, HTTP basic
  sign-in against ``<folder>/htpasswd`` (bcrypt; ``users add / remove / list``), the signed-in user passed on
  as ``X-Forwarded-User`` (a value a client sends under that name is replaced) and the reader's password not.

It waits until each part answers, prints the URL, and ``stop`` ends all it started. See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import grp
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    import bcrypt
except ImportError:  # users add needs it; the MONAI Label environment has it
    bcrypt = None

APP = Path(__file__).resolve().parent
REPO = APP.parent
DEFAULT_BUNDLES = [REPO / "bundles" / "spcxr_lung_segmentation", REPO / "bundles" / "spcxr_cxr_classification"]
PLUGINS = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN, GDCM_PLUGIN = PLUGINS / "libOrthancDicomWeb.so", PLUGINS / "libOrthancGdcm.so"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
ORTHANC_USER = "monailabel"
COMPONENTS = ("orthanc", "monailabel", "nginx")


class ReadingRoomError(Exception):
    """A reason the reading room cannot start or a command cannot run; printed as one line."""


# ---------------------------------------------------------------------------------------------- the folder


class Folder:
    """Where a reading room keeps its users, certificate, PACS storage, logs and running state."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.logs = self.root / "logs"
        self.htpasswd = self.root / "htpasswd"
        self.state = self.root / "state.json"
        self.tls = self.root / "tls"
        self.orthanc = self.root / "orthanc"
        self.nginx = self.root / "nginx"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.jsonl"

    def runtime(self) -> Path:
        """nginx's working folder (its copy of the users, temporary files). Run as root, nginx's workers run as
        ``nobody``, which may not reach this folder: then a private folder under /run, group ``nogroup``."""
        if os.geteuid() != 0:
            return self.nginx
        return Path("/run") / f"spcxr-reading-room-{hashlib.sha256(str(self.root).encode()).hexdigest()[:12]}"

    def read_state(self) -> dict:
        return json.loads(self.state.read_text()) if self.state.is_file() else {}


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only (``mode``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp_{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- readers


def read_users(folder: Folder) -> dict[str, str]:
    """{user: bcrypt hash} of the htpasswd file."""
    if not folder.htpasswd.is_file():
        return {}
    pairs = (line.split(":", 1) for line in folder.htpasswd.read_text().splitlines() if ":" in line)
    return dict(pairs)


def write_users(folder: Folder, users: dict[str, str]) -> None:
    _write_private(folder.htpasswd, "".join(f"{name}:{digest}\n" for name, digest in sorted(users.items())))
    _sync_runtime_users(folder)


# nginx checks the password of every request (HTTP basic has no session), blocking its worker meanwhile: cost 12
# (267 ms a check here) put 2.5 s on the viewer's light requests under an 8-reader load; cost 8 takes 17 ms
# (Apache's htpasswd -B defaults to 5)
BCRYPT_COST = 8


def add_user(folder: Folder, name: str, password: str) -> None:
    """Add (or change the password of) a reader: bcrypt, cost :data:`BCRYPT_COST`."""
    if bcrypt is None:
        raise ReadingRoomError("the bcrypt package is missing: run this with the MONAI Label environment's python")
    if not USER_NAME.match(name):
        raise ReadingRoomError(f"user name {name!r}: letters, digits, '.', '_', '@', '-', at most 64, no spaces")
    if len(password) < 8:
        raise ReadingRoomError("password: at least 8 characters")
    users = read_users(folder)
    users[name] = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()
    write_users(folder, users)


def remove_user(folder: Folder, name: str) -> None:
    users = read_users(folder)
    if name not in users:
        raise ReadingRoomError(f"no user {name!r} in {folder.htpasswd}")
    del users[name]
    write_users(folder, users)


def _sync_runtime_users(folder: Folder) -> None:
    """nginx reads the users on each request from its runtime folder: keep its copy current."""
    runtime = folder.runtime()
    if runtime != folder.nginx and runtime.is_dir() and folder.htpasswd.is_file():
        copy = runtime / "htpasswd"
        shutil.copyfile(folder.htpasswd, copy)
        os.chown(copy, 0, _nogroup())
        os.chmod(copy, 0o640)


def _nogroup() -> int:
    return grp.getgrnam("nogroup").gr_gid


# ---------------------------------------------------------------------------------------------- TLS


def certificate(folder: Folder, cert: str | None, key: str | None, names: list[str]) -> tuple[Path, Path, str]:
    """The certificate and key to serve (the user's, or a self-signed pair made once) and its SHA-256
    fingerprint."""
    if bool(cert) != bool(key):
        raise ReadingRoomError("--cert and --key go together")
    if cert and key:
        cert_path, key_path = Path(cert).resolve(), Path(key).resolve()
        for path in (cert_path, key_path):
            if not path.is_file():
                raise ReadingRoomError(f"{path}: no such file")
    else:
        cert_path, key_path = folder.tls / "cert.pem", folder.tls / "key.pem"
        if not cert_path.is_file():
            folder.tls.mkdir(parents=True, exist_ok=True)
            os.chmod(folder.tls, 0o700)
            alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in dict.fromkeys(names))
            _run(
                ["openssl", "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "825", "-nodes"]
                + ["-keyout", str(key_path), "-out", str(cert_path), "-subj", "/CN=spcxr reading room"]
                + ["-addext", f"subjectAltName={alt}"],
                "making the self-signed certificate",
            )
            os.chmod(key_path, 0o600)
    fingerprint = _run(["openssl", "x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha256"], "reading it")
    return cert_path, key_path, fingerprint.strip().split("=", 1)[-1]


def _is_ip(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
        return True
    except OSError:
        return False


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReadingRoomError(f"{cmd[0]} failed {what}: {proc.stderr.strip()[-400:]}")
    return proc.stdout


# ------------------------------------------------------------------------------------------- the parts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(cmd: list[str], log: Path, env: dict | None = None) -> int:
    """Start ``cmd`` in its own session (it outlives this command), output to ``log``; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    return proc.pid


def orthanc_config(folder: Folder, port: int, password: str, dicom_port: int | None) -> dict:
    return {
        "Name": "spcxr-reading-room",
        "StorageDirectory": str(folder.orthanc / "storage"),
        "IndexDirectory": str(folder.orthanc / "storage"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # Orthanc 1.10 binds every interface: it refuses all but loopback
        "AuthenticationEnabled": True,
        "RegisteredUsers": {ORTHANC_USER: password},
        "DicomServerEnabled": dicom_port is not None,
        "DicomPort": dicom_port or 4242,
        "Plugins": [str(p) for p in (DICOMWEB_PLUGIN, GDCM_PLUGIN) if p.is_file()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
    }


def nginx_config(
    folder: Folder,
    host: str,
    port: int,
    upstream: int,
    token: str,
    cert: Path,
    key: Path,
    pacs: tuple[str, str] | None = None,
) -> str:
    """nginx's configuration: ``upstream`` is MONAI Label's port; ``pacs`` (the room's Orthanc: its DICOMweb
    root URL, the Authorization header nginx sends it) serves the viewer's DICOMweb, where given."""
    runtime = folder.runtime()
    viewer_dicomweb = ""
    if pacs is not None:
        # The viewer's DICOMweb goes to Orthanc directly, with the viewer's Accept header: MONAI Label's proxy
        # drops it, so Orthanc transcodes every frame, and Debian's Orthanc 1.10 crashes transcoding JPEG 2000
        # (its civetweb threads have 100 KB stacks; GDCM's writer takes 130 KB). OHIF asks transfer-syntax=*.
        viewer_dicomweb = "".join(
            f"""
        location /proxy/dicom/{op}/ {{
            proxy_pass {pacs[0]}/;
            proxy_set_header Authorization "{pacs[1]}";
            proxy_read_timeout 600s;
        }}"""
            for op in ("wado", "qido")
        )
    temp = " ".join(
        f"{kind}_temp_path {runtime / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"""# written by monailabel_app/reading_room.py at each start
{"user nobody nogroup;" if os.geteuid() == 0 else ""}
worker_processes auto;
pid {runtime / "nginx.pid"};
error_log {folder.logs / "nginx-error.log"} warn;
events {{ worker_connections 512; }}
http {{
    log_format reading_room '$time_iso8601 $remote_addr user=$remote_user "$request" $status $body_bytes_sent $request_time';
    access_log {folder.logs / "nginx-access.log"} reading_room;
    {temp}
    server_tokens off;
    client_max_body_size 200m;
    server {{
        listen {listen} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        # plain HTTP sent to this port: a redirect to HTTPS, never a page
        error_page 497 =301 https://$host:$server_port$request_uri;
        add_header Strict-Transport-Security "max-age=31536000" always;
        auth_basic "spcxr reading room";
        auth_basic_user_file {runtime / "htpasswd"};{viewer_dicomweb}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $remote_addr;
            # the signed-in user, replacing any value a client sent under this name
            proxy_set_header X-Forwarded-User $remote_user;
            proxy_set_header X-Spcxr-Proxy-Token "{token}";
            # the reader's password stays here
            proxy_set_header Authorization "";
            # the viewer is served from this origin: no other site's page may read answers with the
            # reader's credentials (MONAI Label allows every origin)
            proxy_hide_header Access-Control-Allow-Origin;
            proxy_hide_header Access-Control-Allow-Credentials;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""


def _prepare_runtime(folder: Folder) -> None:
    runtime = folder.runtime()
    runtime.mkdir(parents=True, exist_ok=True)
    if runtime != folder.nginx:  # root: workers run as nobody, and read the users from here
        os.chmod(runtime, 0o750)
        os.chown(runtime, 0, _nogroup())
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (runtime / kind).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(runtime / kind, 65534, _nogroup())
    if runtime == folder.nginx:
        shutil.copyfile(folder.htpasswd, runtime / "htpasswd")
        os.chmod(runtime / "htpasswd", 0o600)
    else:
        _sync_runtime_users(folder)


def _wait(what: str, probe, pid: int, log: Path, timeout: float) -> None:
    """Until ``probe()`` is true; a clear error with the log's end if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ReadingRoomError(f"{what} exited at start; the end of {log}:\n{_tail(log)}")
        if probe():
            return
        time.sleep(0.5)
    raise ReadingRoomError(f"{what} did not answer within {timeout:.0f} s; the end of {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _http_status(url: str, headers: dict | None = None, context: ssl.SSLContext | None = None) -> int | None:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=5, context=context
        ) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _unverified() -> ssl.SSLContext:
    """For probing our own proxy from this machine (the certificate may be self-signed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_prerequisites(python: str) -> None:
    missing = []
    if not shutil.which("Orthanc"):
        missing.append("Orthanc (apt-get install orthanc orthanc-dicomweb orthanc-gdcm)")
    if not DICOMWEB_PLUGIN.is_file():
        missing.append(f"Orthanc's DICOMweb plugin {DICOMWEB_PLUGIN} (apt-get install orthanc-dicomweb)")
    if not shutil.which("nginx"):
        missing.append("nginx (apt-get install nginx-light)")
    if not shutil.which("openssl"):
        missing.append("openssl (apt-get install openssl)")
    if subprocess.run([python, "-c", "import monailabel"], capture_output=True, check=False).returncode != 0:
        missing.append(f"MONAI Label in {python} (bash monailabel_app/install.sh)")
    if missing:
        raise ReadingRoomError("cannot start, missing: " + "; ".join(missing))


def start(folder: Folder, args: argparse.Namespace) -> dict:
    """Start Orthanc, MONAI Label and nginx; their state (pids, ports, URL, fingerprint)."""
    running = [name for name, part in folder.read_state().get("parts", {}).items() if _alive(part["pid"])]
    if running:
        raise ReadingRoomError(f"already running ({', '.join(running)}) from {folder.root}: stop it first")
    if not read_users(folder):
        raise ReadingRoomError(f"no readers in {folder.htpasswd}: add one first (reading_room.py users add NAME)")
    check_prerequisites(args.python)
    host, port = parse_listen(args.listen)
    folder.logs.mkdir(parents=True, exist_ok=True)
    names = ["localhost", "127.0.0.1", *([] if host in ("0.0.0.0", "::") else [host]), *args.hostname]
    cert, key, fingerprint = certificate(folder, args.cert, args.key, names)
    orthanc_password, token = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    orthanc_port, ml_port = _free_port(), _free_port()
    state: dict = {"folder": str(folder.root), "parts": {}}
    try:
        config = orthanc_config(folder, orthanc_port, orthanc_password, args.dicom_port)
        _write_private(folder.orthanc / "orthanc.json", json.dumps(config, indent=2))
        log = folder.logs / "orthanc.log"
        pid = _spawn(["Orthanc", str(folder.orthanc / "orthanc.json")], log)
        state["parts"]["orthanc"] = {"pid": pid, "url": f"http://127.0.0.1:{orthanc_port}", "log": str(log)}
        auth = _basic(ORTHANC_USER, orthanc_password)
        _wait("Orthanc", lambda: _http_status(f"http://127.0.0.1:{orthanc_port}/system", auth) == 200, pid, log, 60)

        log = folder.logs / "monailabel.log"
        env = {
            **os.environ,
            "SPCXR_PROXY_TOKEN": token,
            "SPCXR_AUDIT_LOG": str(folder.audit_log),
            "MONAI_LABEL_DICOMWEB_USERNAME": ORTHANC_USER,
            "MONAI_LABEL_DICOMWEB_PASSWORD": orthanc_password,
            "MONAI_LABEL_DICOMWEB_CACHE_PATH": str(folder.root / "cache"),
            "MONAI_LABEL_SESSION_PATH": str(folder.root / "sessions"),
            "PYTHONWARNINGS": "ignore",
            # MONAI Label re-imports the app's lib/ when it loads main.py: the middleware (imported by uvicorn
            # first) and the app must share one lib.identity, or the app never sees who signed in
            "MONAI_LABEL_RELOAD_APP_LIB": "false",
            # uvicorn imports lib.behind_proxy before MONAI Label puts the app's folder on the path
            "PYTHONPATH": os.pathsep.join(p for p in (str(APP), os.environ.get("PYTHONPATH", "")) if p),
        }
        bundles = ",".join(str(Path(b).resolve()) for b in args.bundles)
        cmd = [args.python, "-m", "monailabel.main", "start_server", "--app", str(APP)]
        studies = args.studies or f"http://127.0.0.1:{orthanc_port}/dicom-web"
        studies = studies if re.match(r"^https?://", studies) else str(Path(studies).resolve())
        cmd += ["--studies", studies, "--conf", "bundles", bundles]
        cmd += ["--host", "127.0.0.1", "--port", str(ml_port), "--uvicorn_app", "lib.behind_proxy:app"]
        pid = _spawn(cmd, log, env)
        state["parts"]["monailabel"] = {"pid": pid, "url": f"http://127.0.0.1:{ml_port}", "log": str(log)}
        proxy_headers = {"X-Spcxr-Proxy-Token": token, "X-Forwarded-User": "reading-room-start"}
        ready = lambda: _http_status(f"http://127.0.0.1:{ml_port}/info/", proxy_headers) == 200  # noqa: E731
        _wait("MONAI Label", ready, pid, log, args.timeout)

        pacs = None if args.studies else (f"http://127.0.0.1:{orthanc_port}/dicom-web", auth["Authorization"])
        _write_private(folder.nginx / "nginx.conf", nginx_config(folder, host, port, ml_port, token, cert, key, pacs))
        _prepare_runtime(folder)
        log = folder.logs / "nginx-error.log"
        conf = folder.nginx / "nginx.conf"
        # -e: the start-up log too is ours (a user other than root cannot open Debian's /var/log/nginx/)
        nginx = ["nginx", "-c", str(conf), "-p", str(folder.nginx), "-e", str(log)]
        _run([*nginx, "-t", "-q"], f"checking {conf}")
        pid = _spawn([*nginx, "-g", "daemon off;"], log)
        probe_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"https://{probe_host if ':' not in probe_host else f'[{probe_host}]'}:{port}"
        state["parts"]["nginx"] = {"pid": pid, "url": url, "log": str(log)}
        _wait("nginx", lambda: _http_status(f"{url}/info/", context=_unverified()) == 401, pid, log, 30)
    except BaseException:
        stop_parts(state)
        raise
    state.update({"url": url, "listen": args.listen, "fingerprint": fingerprint, "certificate": str(cert)})
    state["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _write_private(folder.state, json.dumps(state, indent=2))
    return state


def parse_listen(listen: str) -> tuple[str, int]:
    match = re.match(r"^\[?([^\]]*)\]?:(\d+)$", listen)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ReadingRoomError(f"--listen {listen!r}: give ADDRESS:PORT, e.g. 0.0.0.0:8443 or 192.168.1.20:8443")
    return match.group(1), int(match.group(2))


def stop_parts(state: dict) -> list[str]:
    """End every part of ``state`` (nginx, MONAI Label, Orthanc, in that order); the names stopped."""
    stopped = []
    for name in reversed(COMPONENTS):
        part = state.get("parts", {}).get(name)
        if not part or not _alive(part["pid"]):
            continue
        try:
            os.killpg(part["pid"], signal.SIGTERM)  # the part and whatever it started (uvicorn, workers)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 20
        while _alive(part["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(part["pid"]):
            os.killpg(part["pid"], signal.SIGKILL)
        stopped.append(name)
    return stopped


def status(folder: Folder) -> dict[str, bool]:
    state = folder.read_state()
    return {name: _alive(part["pid"]) for name, part in state.get("parts", {}).items()}


# ----------------------------------------------------------------------------------------------- the CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=os.environ.get("SPCXR_READING_ROOM", "reading-room"))
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("start", help="start Orthanc, MONAI Label and nginx")
    go.add_argument("--listen", default="127.0.0.1:8443", help="ADDRESS:PORT of the only listening socket")
    go.add_argument("--cert", help="PEM certificate (chain) to serve; default: a self-signed one made once")
    go.add_argument("--key", help="its PEM private key")
    go.add_argument("--hostname", nargs="*", default=[], help="further names for the self-signed certificate")
    go.add_argument("--bundles", nargs="+", default=[str(b) for b in DEFAULT_BUNDLES], help="bundle folders")
    go.add_argument("--studies", help="serve this folder or DICOMweb URL instead of the room's Orthanc (benchmarks)")
    go.add_argument("--dicom-port", type=int, default=None, help="open Orthanc's DICOM port (default: closed)")
    go.add_argument("--python", default=sys.executable, help="python of the MONAI Label environment")
    go.add_argument("--timeout", type=float, default=300, help="seconds MONAI Label may take to start")
    sub.add_parser("stop", help="stop everything start started")
    sub.add_parser("status", help="which parts run")
    users = sub.add_parser("users", help="the readers who may sign in")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a reader, or change a reader's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users_sub.add_parser("remove", help="remove a reader").add_argument("name")
    users_sub.add_parser("list", help="the readers")
    args = parser.parse_args(argv)
    folder = Folder(args.folder)
    try:
        if args.command == "start":
            state = start(folder, args)
            print(f"reading room up at {state['url']}/ohif/ (listening on {state['listen']})")
            print(f"certificate {state['certificate']}, SHA-256 fingerprint {state['fingerprint']}")
            print(f"logs and audit log in {folder.logs}; stop with: {Path(__file__).name} --folder {folder.root} stop")
        elif args.command == "stop":
            stopped = stop_parts(folder.read_state())
            folder.state.unlink(missing_ok=True)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        elif args.command == "status":
            parts = status(folder)
            for name in COMPONENTS:
                print(f"{name}: {'running' if parts.get(name) else 'stopped'}")
            return 0 if parts and all(parts.values()) else 3
        elif args.users_command == "add":
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
            add_user(folder, args.name, password)
            print(f"{args.name} may sign in ({folder.htpasswd})")
        elif args.users_command == "remove":
            remove_user(folder, args.name)
            print(f"{args.name} removed; nginx reads the users at each request")
        else:
            print("\n".join(read_users(folder)) or "(no readers)")
    except ReadingRoomError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
