"""A real Jupyter server (JupyterLab and Notebook 7) on 127.0.0.1 and a headless Chromium driven by Playwright.

The server serves a temporary copy of the course, so running every cell never touches the committed notebooks.
Skips (with the reason) where Chromium or Playwright is missing; `.ci/run` installs Chromium so CI runs it.
"""
from __future__ import annotations

import importlib.util
import json
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
HAS_NOTEBOOK7 = importlib.util.find_spec("notebook") is not None\
    and importlib.util.find_spec("notebook.app") is not None


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


def _start_server(tmp_path_factory, name: str, env_overrides: dict):
    """Start a Jupyter server (JupyterLab, and Notebook 7 where installed) on a copy of the course.

    Its kernels see the server's environment as it is: the course's kernel spec (which pins the inline backend)
    is shadowed by a bare one, so MPLBACKEND from the caller's shell (or from `env_overrides`) reaches them.
    """
    if CHROMIUM is None:
        pytest.skip("Chromium not found (apt-get install chromium); the browser tests need it")
    pytest.importorskip("playwright", reason="playwright is not installed")
    served = tmp_path_factory.mktemp(f"course-{name}")
    for d in COURSE_DIRS:
        if (ROOT / d).is_dir():
            shutil.copytree(ROOT / d, served / d, ignore=shutil.ignore_patterns("__pycache__", "out"))
    home = tmp_path_factory.mktemp(f"home-{name}")  # Jupyter and matplotlib write nothing outside
    spec = home / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    token, port = secrets.token_hex(16), _free_port()
    config = home / "config"  # Notebook 7's pages on the same server, its app reachable from the page like Lab's
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"jupyterlab": True, **({"notebook": True} if HAS_NOTEBOOK7 else {})}},
        "JupyterNotebookApp": {"expose_app_in_browser": True}}))
    env = dict(os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_PATH=str(home / "share" / "jupyter"), **env_overrides)
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
def lab(tmp_path_factory):
    """(base_url, token, served_root) of a JupyterLab serving a copy of the course, in the caller's environment
    (`MPLBACKEND=Agg make test-browser` runs every notebook as a server whose shell sets Agg would)."""
    yield from _start_server(tmp_path_factory, "lab", {})


@pytest.fixture(scope="session")
def lab_agg(tmp_path_factory):
    """The same server started with MPLBACKEND=Agg, as on servers, in Docker images and in CI."""
    yield from _start_server(tmp_path_factory, "agg", {"MPLBACKEND": "Agg"})


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
