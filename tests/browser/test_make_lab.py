"""`make lab`, as the README tells a newcomer: JupyterLab serves notebooks/ with the course's kernel as default."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, _free_port, _wait_for


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.mark.browser
def test_make_lab_serves_the_course_with_its_kernel(tmp_path):
    token, port = secrets.token_hex(8), _free_port()
    env = dict(os.environ, HOME=str(tmp_path), BROWSER="true")  # BROWSER=true: no window to open here
    args = f"--no-browser --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={args}"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/api/status?token={token}", timeout=120)
        specs = _get(f"{base}/api/kernelspecs?token={token}")
        assert specs["default"] == "saattn-edu", specs["default"]
        assert "saattn-edu" in specs["kernelspecs"]
        listing = _get(f"{base}/api/contents/notebooks?token={token}")
        names = {item["name"] for item in listing["content"]}
        assert "01_patterns_gallery.ipynb" in names, sorted(names)
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=10) as r:  # follows the redirect
            assert "/lab/tree/notebooks" in r.url, r.url  # the server's front page is the lessons folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make and the server it started, nothing else
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
