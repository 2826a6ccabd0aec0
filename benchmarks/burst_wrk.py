"""wrk for ``benchmarks.burst``: each request of a file sent once, and what came back.

wrk's threads each walk their share of the file's lines (path, tab, user agent): thread ``k`` of
``T`` takes lines ``k``, ``k + T``, … and stops when it has handed out its last one. The script
times its threads with the monotonic clock (LuaJIT's FFI; wrk's own duration includes the time
it sleeps after the threads are done), counts answers that are not 200 and answers that carry
``X-Blanco-Fallback``, and prints one JSON line. The benchmark interrupts wrk (SIGINT, which
makes it print its summary) once every thread has written its "done" file: a thread is done when
it has handed out its last line and every answer is in (a connection with nothing left to send
sends nothing and waits), so every line is sent once and every answer is counted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.burst_mix import Request
from benchmarks.open_route import ACCEPT

JSON_PREFIX = "BURST-JSON "
WRK_THREADS = 2

LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } burst_timespec;
int clock_gettime(int clk_id, burst_timespec *tp);
]]
local clock = ffi.new("burst_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local lines = {}
local cursor = 0
local done_file = ""
local accept = ""
started = 0
finished = 0
handed = 0
answered = 0
non200 = 0
fallbacks = 0
fallback_reasons = ""
local reasons = {}

function init(args)
  local path, count = args[1], tonumber(args[3])
  done_file = args[2] .. "." .. id
  accept = args[4]
  local index = 0
  for line in io.lines(path) do
    if index % count == id then
      local tab = line:find("\t", 1, true)
      table.insert(lines, {line:sub(1, tab - 1), line:sub(tab + 1)})
    end
    index = index + 1
  end
end

local function finish()
  finished = now()
  local parts = {}
  for reason, n in pairs(reasons) do table.insert(parts, reason .. "=" .. n) end
  fallback_reasons = table.concat(parts, ",")
  local out = io.open(done_file, "w")
  out:write("done\n")
  out:close()
  wrk.thread:stop()
end

local verified = false

local function format(item)
  return wrk.format("GET", item[1], {["User-Agent"] = item[2], ["Accept"] = accept})
end

function request()
  if id == 0 and not verified then
    -- wrk calls thread 0's request() once before it runs, to check the request it returns:
    -- that call gets the first line without using it up
    verified = true
    return format(lines[1])
  end
  if started == 0 then started = now() end
  cursor = cursor + 1
  local item = lines[cursor]
  if item == nil then
    -- nothing left: this connection sends nothing more and waits, idle, until the others'
    -- answers are in; then the thread stops
    if finished == 0 and answered == handed then finish() end
    return ""
  end
  handed = handed + 1
  return format(item)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then non200 = non200 + 1 end
  local reason = headers["X-Blanco-Fallback"]
  if reason ~= nil then
    fallbacks = fallbacks + 1
    reasons[reason] = (reasons[reason] or 0) + 1
  end
  if finished == 0 and cursor > #lines and answered == handed then finish() end
end

function done(summary, latency, requests)
  local first, last, handed_all, bad, fell = math.huge, 0, 0, 0, 0
  local texts = {}
  for _, thread in ipairs(threads) do
    local s, f = thread:get("started"), thread:get("finished")
    if s > 0 and s < first then first = s end
    if f > last then last = f end
    handed_all = handed_all + thread:get("handed")
    bad = bad + thread:get("non200")
    fell = fell + thread:get("fallbacks")
    local r = thread:get("fallback_reasons")
    if r ~= "" then table.insert(texts, r) end
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"answers": %d, "handed": %d, "elapsed": %.6f, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "p999_us": %d, "max_us": %d, "non200": %d, "fallbacks": %d, '
    .. '"reasons": "%s", "socket_errors": %d, "wrk_status_errors": %d, "bytes": %d}\n',
    "BURST-JSON ", summary.requests, handed_all, last - first, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    bad, fell, table.concat(texts, ","), e.connect + e.read + e.write + e.timeout, e.status,
    summary.bytes))
end
"""


def ensure_wrk() -> str:
    """The wrk binary; installed with ``apt-get install -y wrk`` when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("  … installing wrk (apt-get install -y wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
        subprocess.run(install, capture_output=True, check=False)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is missing and `apt-get install -y wrk` did not install it")
    return found


def write_requests(path: Path, requests: Sequence[Request]) -> None:
    """The request lines wrk walks: path, a tab, the user agent."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{r.path}\t{r.client.user_agent}\n" for r in requests)


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run of a request file measured (latencies in seconds)."""

    connections: int
    lines: int
    answers: int
    elapsed: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    non200: int
    fallbacks: int
    reasons: str
    socket_errors: int
    timed_out: bool
    bytes: int = 0
    server_cpu: float = math.nan
    redis_cpu: float = math.nan
    wrk_cpu: float = math.nan
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Answers per second of the threads' wall time."""
        return self.answers / self.elapsed if self.elapsed > 0 else math.nan


def _wait_until_done(
    process: subprocess.Popen[str], done: Path, threads: int, limit: float
) -> bool:
    """Interrupt wrk (it then prints its summary) once every thread wrote its done file;
    True if that did not happen within ``limit`` seconds or wrk ended first."""
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if len(list(done.parent.glob(done.name + ".*"))) >= threads:
            time.sleep(0.05)  # let the last answers of the other threads land
            process.send_signal(signal.SIGINT)
            return False
        time.sleep(0.02)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    return True


def run_wrk(
    wrk: str,
    url: str,
    requests_file: Path,
    lines: int,
    connections: int,
    max_seconds: float,
) -> WrkRun:
    """Send every line of ``requests_file`` once over ``connections`` keep-alive connections
    (at most ``max_seconds``); wrk's summary as a :class:`WrkRun` (CPU fields left NaN)."""
    threads = max(1, min(WRK_THREADS, connections, lines))
    script = requests_file.with_suffix(".lua")
    script.write_text(LUA)
    done = requests_file.with_suffix(".done")
    for stale in done.parent.glob(done.name + ".*"):
        stale.unlink()
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, math.ceil(max_seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(requests_file),
        str(done),
        str(threads),
        ACCEPT,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        timed_out = _wait_until_done(process, done, threads, max_seconds + 30)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # interrupted, or wrk hung: it stops with the benchmark
            process.kill()
            process.communicate()
    found = [line for line in output.splitlines() if line.startswith(JSON_PREFIX)]
    if not found:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    data = json.loads(found[-1][len(JSON_PREFIX) :])
    if os.environ.get("BURST_DEBUG"):
        print(output)
    return WrkRun(
        connections=connections,
        lines=lines,
        answers=int(data["answers"]),
        elapsed=float(data["elapsed"]),
        p50=data["p50_us"] / 1e6,
        p90=data["p90_us"] / 1e6,
        p99=data["p99_us"] / 1e6,
        p999=data["p999_us"] / 1e6,
        max=data["max_us"] / 1e6,
        non200=int(data["non200"]),
        fallbacks=int(data["fallbacks"]),
        reasons=str(data["reasons"]),
        socket_errors=int(data["socket_errors"]),
        timed_out=timed_out,
        bytes=int(data["bytes"]),
    )
