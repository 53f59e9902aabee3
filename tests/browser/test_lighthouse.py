"""Lighthouse (from npm, in tests/browser/node_modules) on every built page, in Debian's
Chromium.

Each page must score at least 95 for accessibility. Both scores, accessibility and
performance (Lighthouse's desktop preset), are written to _build/lighthouse.json for the
table in benchmarks/RESULTS.md. The machine has no internet, so Chromium resolves the
CDN's host to a local HTTPS server that answers from the same npm copies the browser
test serves: the scores are of the page as a reader with a network gets it, not of a
page whose scripts time out.
"""

from __future__ import annotations

import json
import mimetypes
import os
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_pages import (  # noqa: F401 (server is a fixture, used by name)
    CDN,
    CHROMIUM,
    FLAGS,
    HTML,
    NODE,
    PAGES,
    local_copy,
    server,
)

LIGHTHOUSE = NODE / ".bin" / "lighthouse"
RESULTS = HTML.parent / "lighthouse.json"
MIN_ACCESSIBILITY = 0.95


class _MirrorHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = local_copy(f"https://{CDN}{self.path}")
        if path is None:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header(
            "Content-Type",
            mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        )
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def cdn_mirror(tmp_path_factory):
    """A local HTTPS server for the CDN's host, with a throwaway self-signed
    certificate: its port."""
    folder = tmp_path_factory.mktemp("cdn")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={CDN}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _MirrorHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


@pytest.fixture(scope="module")
def results():
    scores: dict[str, dict[str, float]] = {}
    yield scores
    RESULTS.write_text(json.dumps(scores, indent=1, sort_keys=True))


@pytest.mark.parametrize("page_path", PAGES)
def test_lighthouse_accessibility(server, cdn_mirror, results, tmp_path, page_path):  # noqa: F811
    if not LIGHTHOUSE.exists():
        pytest.fail(
            "tests/browser/node_modules has no lighthouse: `make test` runs `npm ci` "
            "there"
        )
    flags = [
        *FLAGS,
        f"--host-resolver-rules=MAP {CDN} 127.0.0.1:{cdn_mirror}",
        "--ignore-certificate-errors",
    ]
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            str(LIGHTHOUSE),
            f"{server}/{page_path}",
            "--preset=desktop",
            "--quiet",
            "--only-categories=accessibility,performance",
            "--output=json",
            f"--output-path={report}",
            f"--chrome-flags={' '.join(flags)}",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and report.exists(), run.stderr[-2000:]
    data = json.loads(report.read_text())
    scores = {name: cat["score"] for name, cat in data["categories"].items()}
    results[page_path] = scores
    failing = [
        f"{a['id']}: {data['audits'][a['id']]['title']}"
        for a in data["categories"]["accessibility"]["auditRefs"]
        if a["weight"] and (data["audits"][a["id"]]["score"] or 0) < 1
    ]
    assert scores["accessibility"] >= MIN_ACCESSIBILITY, (scores, failing)
