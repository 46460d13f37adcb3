"""A real JupyterLab on 127.0.0.1 and a headless Chromium driven by Playwright (RECIPES.md's recipe).

The server serves a temporary copy of the course, so running every cell never touches the committed notebooks.
Skips (with the reason) where Chromium or Playwright is missing; `.ci/run` installs Chromium so CI runs it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
COURSE_DIRS = ("notebooks", "solutions", "exercises", "benchmarks")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """(base_url, token, served_root) of a JupyterLab serving a copy of the course."""
    if CHROMIUM is None:
        pytest.skip("Chromium not found (apt-get install chromium); the browser tests need it")
    pytest.importorskip("playwright", reason="playwright is not installed")
    served = tmp_path_factory.mktemp("course")
    for name in COURSE_DIRS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, served / name, ignore=shutil.ignore_patterns("__pycache__", "out"))
    home = tmp_path_factory.mktemp("home")  # Jupyter and matplotlib write nothing outside
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
        "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=False",
    ]
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status?token={token}")
        yield f"http://127.0.0.1:{port}", token, served
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started, nothing else
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()
