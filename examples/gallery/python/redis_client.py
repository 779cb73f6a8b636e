"""A redis-py client for netkit's gallery: PING the server and wait for the answer.

    usage: redis_client.py HOST PORT [IDLE INTVL CNT]

With IDLE INTVL CNT: ``socket_keepalive=True`` and ``socket_keepalive_options``
set all three on the socket.  Without them: ``socket_keepalive=True`` alone,
the system's 7200/75/9 -- and redis-py's own ``socket_timeout`` (5 s since
redis-py 6) gives up long before.
"""

import socket
import sys
import time

import redis

host, port = sys.argv[1], int(sys.argv[2])
options = None
if len(sys.argv) > 3:
    options = {socket.TCP_KEEPIDLE: int(sys.argv[3]), socket.TCP_KEEPINTVL: int(sys.argv[4]),
               socket.TCP_KEEPCNT: int(sys.argv[5])}
client = redis.Redis(host=host, port=port, socket_keepalive=True, socket_keepalive_options=options)
started = time.monotonic()
try:
    client.ping()
except redis.RedisError as exc:
    print(f"gave up after {time.monotonic() - started:.3f} s: {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
