"""The wheel, installed in a fresh virtual environment outside the repository, runs the demo and
serves an image, and so does gunicorn in the container's layout (the venv plus wsgi.py and
gunicorn.conf.py): it carries every module, template and font the code reads, and its
dependencies are all declared. Building it, or installing the checkout editable (as ``make``
does), prints no setuptools warning banner."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import free_port
from tests.factories import decode_image

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "server", "models", "renderers", "templates")
"""What the wheel is built from (the Dockerfile copies the same)."""
RUN_TIMEOUT = 120


def shipped_files() -> set[str]:
    """Every file of the checkout that the installed package needs, as wheel paths."""
    files = {
        path.relative_to(ROOT).as_posix()
        for package in ("server", "models", "renderers")
        for path in (ROOT / package).rglob("*.py")
    }
    files |= {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*") if p.is_file()
    }
    files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "renderers" / "fonts").iterdir()}
    return {f for f in files if "__pycache__" not in f}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without Blanco's settings, a Redis URL or a Python path into the
    checkout (what a user's shell has)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("BLANCO_")
    }
    env.update(extra)
    return env


def build_wheel(source: Path, out: Path) -> tuple[Path, str]:
    """Build the wheel from a copy of the sources; return it and what the build printed."""
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=clean_env(),
    )
    assert built.returncode == 0, built.stderr
    [wheel] = out.glob("blanco-*.whl")
    return wheel, built.stdout + built.stderr


def pip(venv: Path, *args: str) -> str:
    """Run this environment's pip (a current one, as ``make`` upgrades to) on the venv; return
    what it printed (fails the test if pip fails)."""
    target = str(venv / "bin" / "python")
    ran = subprocess.run(
        [sys.executable, "-m", "pip", "--python", target, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=clean_env(),
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout + ran.stderr


def entry_points(wheel: Path) -> str:
    """The wheel's entry_points.txt."""
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        return archive.read(name).decode()


def assert_no_banner(output: str) -> None:
    """No setuptools warning banner (deprecations, notes on editable installs) in ``output``."""
    for marker in ("deprecat", "buildbackendwarning", "setuptoolswarning", "!!"):
        assert marker not in output.lower(), output


def fetch_when_up(url: str, server: subprocess.Popen[str]) -> bytes:
    """The PNG at ``url``, once ``server`` answers (fails if it exits or takes 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                assert response.status == 200
                assert response.headers["Content-Type"] == "image/png"
                body: bytes = response.read()
                return body
        except OSError:
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(
    tmp_path: Path, short_tmp: Path
) -> None:
    wheel, build_output = build_wheel(tmp_path / "source", tmp_path / "dist")
    assert_no_banner(build_output)
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if ".dist-info/" not in name}
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = archive.read(metadata).decode().split("\n\n")[0].splitlines()
    assert packaged == shipped_files()
    assert "License-Expression: Apache-2.0" in headers  # the licence as an SPDX expression
    assert "blanco = server.cli.main:main" in entry_points(wheel)

    venv = tmp_path / "venv"  # fresh, without system site-packages
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=RUN_TIMEOUT)
    assert_no_banner(pip(venv, "install", "--no-deps", "--editable", str(tmp_path / "source")))
    [site] = venv.glob("lib/python*/site-packages")
    editable = [p.read_text().split() for p in site.glob("__editable__*blanco*.pth")]
    assert editable == [[str(tmp_path / "source")]]  # a plain path of the checkout's root
    pip(venv, "uninstall", "--yes", "blanco")  # that was `make`'s editable install
    # the wheel, its dependencies from the index (not compiled ahead: scipy's thousands of
    # modules would take longer to compile than the demo uses them)
    pip(venv, "install", "--quiet", "--no-compile", str(wheel))
    elsewhere = short_tmp  # the embedded Redis's socket path must stay short
    port = free_port()
    demo = subprocess.Popen(
        [str(tmp_path / "venv" / "bin" / "blanco"), "demo", "--port", str(port)],
        cwd=elsewhere,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        recipient, image_url, _ = demo.stdout.readline().split()
        assert recipient == "anna"
        picture = fetch_when_up(image_url, demo)
        assert decode_image(picture).size == (600, 200)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/demo", timeout=5) as response:
            assert b"/s/daily/1.png" in response.read()  # a page from the packaged templates
    finally:
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr

    # The container's layout (see the Dockerfile): the venv, wsgi.py and gunicorn.conf.py in
    # /app, here on the demo's data folder (its embedded Redis) with the demo's key.
    app = tmp_path / "app"
    app.mkdir()
    for entry in ("wsgi.py", "gunicorn.conf.py"):
        shutil.copy2(ROOT / entry, app / entry)
    key = (elsewhere / "data" / "quickstart-signing-key").read_text().strip()
    served_port = free_port()
    env = clean_env(
        BLANCO_SIGNING_KEYS=key,
        BLANCO_DATA_DIR=str(elsewhere / "data"),
        BLANCO_BIND=f"127.0.0.1:{served_port}",
        BLANCO_WORKERS="1",
    )
    gunicorn = subprocess.Popen(
        [str(tmp_path / "venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=app,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        picture = fetch_when_up(image_url.replace(f":{port}/", f":{served_port}/"), gunicorn)
        assert decode_image(picture).size == (600, 200)
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        _, stderr = gunicorn.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A fresh folder with a short path (a Unix socket's path is limited to about 100 bytes,
    and a parallel test run's temporary folders are deeper)."""
    folder = Path(tempfile.mkdtemp(prefix="bw-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
