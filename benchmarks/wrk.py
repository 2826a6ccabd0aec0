"""wrk, the HTTP load generator of the targets: found (installed with apt-get when missing),
run, and its report parsed into named figures."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.targets import WRK_CONNECTIONS, WRK_THREADS

APT_GET = "apt-get"
INSTALL_TIMEOUT = 600.0
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


class WrkError(RuntimeError):
    """wrk did not run, or printed a report this module cannot read."""


@dataclass(frozen=True)
class WrkFound:
    """Where wrk is (None when it is missing) and what was done to get it."""

    path: str | None
    note: str


def _run_quietly(command: Sequence[str]) -> bool:
    try:
        done = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_wrk(
    install: bool = True,
    *,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[[Sequence[str]], bool] = _run_quietly,
) -> WrkFound:
    """wrk on PATH; when it is missing and ``install``, ``apt-get install -y wrk`` (after an
    ``apt-get update`` when the first try fails), as the Makefile's ``wrk`` target does."""
    found = which("wrk")
    if found:
        return WrkFound(found, "")
    if not install:
        return WrkFound(None, "wrk is not installed")
    if which(APT_GET) is None:
        return WrkFound(None, "wrk is not installed and there is no apt-get to install it")
    command = [APT_GET, "install", "-y", "-q", "wrk"]
    if not run(command):
        run([APT_GET, "update", "-q"])
        run(command)
    found = which("wrk")
    if found:
        return WrkFound(found, "wrk was missing: installed it with `apt-get install -y wrk`")
    return WrkFound(None, "wrk is not installed and `apt-get install -y wrk` did not install it")


@dataclass(frozen=True)
class WrkResult:
    """wrk's figures for one run: completed requests, their rate and latency percentiles
    (seconds), the answers that were not 2xx/3xx, socket errors, and wrk's own CPU time."""

    requests: int
    seconds: float
    rate: float
    p50: float
    p99: float
    non_2xx: int
    socket_errors: int
    cpu: float


def seconds_of(text: str) -> float:
    """``1.23ms`` as seconds."""
    matched = re.fullmatch(_DURATION, text.strip())
    if matched is None:
        raise WrkError(f"not a wrk duration: {text!r}")
    return float(matched.group(1)) * _UNITS[matched.group(2)]


def parse_report(report: str, cpu: float = 0.0) -> WrkResult:
    """The figures of ``wrk --latency``'s report."""

    def search(pattern: str) -> re.Match[str]:
        matched = re.search(pattern, report, re.MULTILINE)
        if matched is None:
            raise WrkError(f"wrk's report has no {pattern!r}:\n{report}")
        return matched

    total = search(r"^\s*(\d+) requests in " + _DURATION)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds_of(total.group(2) + total.group(3)),
        rate=float(search(r"^Requests/sec:\s+([0-9.]+)").group(1)),
        p50=seconds_of(search(r"^\s+50%\s+(\S+)").group(1)),
        p99=seconds_of(search(r"^\s+99%\s+(\S+)").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        cpu=cpu,
    )


def wrk_command(
    wrk: str, url: str, seconds: float, headers: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """``wrk -t2 -c8 -d<seconds>s --latency`` with ``headers``, against ``url``."""
    command = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers:
        command += ["-H", f"{name}: {value}"]
    return [*command, url]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str, url: str, seconds: float, headers: Sequence[tuple[str, str]] = ()
) -> WrkResult:
    """Drive ``url`` for ``seconds`` and return wrk's figures (and the CPU wrk used)."""
    cpu = _children_cpu()
    done = subprocess.run(
        wrk_command(wrk, url, seconds, headers),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    return parse_report(done.stdout, _children_cpu() - cpu)
