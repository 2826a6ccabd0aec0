"""The README's container claims, read from the Dockerfile (building the image needs Docker
and the network, which the test machines may lack): the image builds the wheel from the
sources the wheel test uses, and runs gunicorn with the repository's configuration as the
non-root user 10001 on port 8000, with its data folder at /app/data."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_wheel_install import SOURCES

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: what the image is."""
    every = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [n for n, (keyword, _) in enumerate(every) if keyword == "FROM"]
    return every[starts[-1] :]


def build_stage() -> list[tuple[str, str]]:
    """The instructions before the last stage."""
    every = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [n for n, (keyword, _) in enumerate(every) if keyword == "FROM"]
    return every[: starts[-1]]


def test_the_build_stage_builds_the_wheel_from_the_packaged_sources() -> None:
    stage = build_stage()
    copied = {
        source
        for keyword, arguments in stage
        if keyword == "COPY"
        for source in arguments.split()[:-1]
    }
    assert copied == set(SOURCES)
    runs = " ".join(arguments for keyword, arguments in stage if keyword == "RUN")
    assert "pip wheel" in runs
    assert "pip install /wheels/blanco-" in runs


def test_the_image_runs_gunicorn_as_user_10001_on_port_8000() -> None:
    stage = final_stage()
    assert stage[0][1].endswith("-slim")
    runs = [arguments for keyword, arguments in stage if keyword == "RUN"]
    adding = [run for run in runs if run.startswith("useradd ")]
    assert len(adding) == 1, "the image creates its user"
    useradd = adding[0].split("&&")[0].split()
    assert useradd[useradd.index("--uid") + 1] == "10001"
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users == [useradd[-1]]
    assert users[0] not in ("root", "0")
    assert ("EXPOSE", "8000") in stage
    env = " ".join(arguments for keyword, arguments in stage if keyword == "ENV")
    assert "BLANCO_BIND=0.0.0.0:8000" in env
    assert "BLANCO_DATA_DIR=/app/data" in env
    commands = [json.loads(arguments) for keyword, arguments in stage if keyword == "CMD"]
    assert commands == [["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]]
    copied = [arguments for keyword, arguments in stage if keyword == "COPY"]
    assert "wsgi.py gunicorn.conf.py ./" in copied
    assert not any(source in " ".join(copied) for source in ("server", "models", "renderers"))


def test_the_data_folder_is_the_only_volume() -> None:
    volumes = [json.loads(arguments) for keyword, arguments in final_stage() if keyword == "VOLUME"]
    assert volumes == [["/app/data"]]
