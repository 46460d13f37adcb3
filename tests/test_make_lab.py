"""`make lab`, as the README tells a newcomer: JupyterLab serves notebooks/ and every notebook opens in the course's
kernel (no browser needed: the server's REST API says what JupyterLab would show)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import urllib.request
from pathlib import Path

import nbformat

from browser.conftest import _free_port, _wait_for  # the browser tests' server helpers (tests/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


INLINE = "module://matplotlib_inline.backend_inline"


def _environments_in_group(pgid: int, name: str) -> list[dict]:
    """Environment variables of the processes of process group `pgid` whose command line mentions `name`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) != pgid or name not in (proc / "cmdline").read_text():
                continue
            pairs = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        found.append(dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p))
    return found


def test_make_lab_serves_the_course_with_its_kernel(tmp_path):
    token, port = secrets.token_hex(8), _free_port()
    # BROWSER=true: no window to open here; MPLBACKEND=Agg: a shell like a server's, Docker's or CI's
    env = dict(os.environ, HOME=str(tmp_path), BROWSER="true", MPLBACKEND="Agg")
    args = f"--no-browser --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={args}"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/api/status?token={token}", timeout=120)
        specs = _get(f"{base}/api/kernelspecs?token={token}")
        assert specs["default"] == "python3", specs["default"]
        kernels = {nbformat.read(p, as_version=4).metadata.kernelspec.name
                   for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb")}
        assert kernels == {"python3"}, kernels  # the name every notebook asks for ...
        spec = specs["kernelspecs"]["python3"]["spec"]  # ... is the course's kernel: this venv's Python
        assert spec["display_name"] == "Python (saattn-edu)", spec
        assert Path(spec["argv"][0]).parent == ROOT / ".venv" / "bin", spec["argv"]
        assert spec["env"]["MPLBACKEND"] == INLINE, spec  # its figures are drawn inline whatever the shell says
        if Path("/proc").is_dir():  # Linux: read the server's own environment
            server_envs = _environments_in_group(proc.pid, "jupyter")
            assert server_envs and all("MPLBACKEND" not in e for e in server_envs), "the server kept the shell's Agg"
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
