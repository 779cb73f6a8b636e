"""A PostgreSQL client for netkit's gallery: connect with a libpq connection string and wait.

    usage: psycopg_client.py CONNINFO     (psycopg 3 from PyPI, its own libpq)
           /usr/bin/python3 psycopg_client.py --psycopg2 CONNINFO     (Debian's python3-psycopg2)

libpq sets what the string asks for: ``keepalives_idle``, ``keepalives_interval``,
``keepalives_count`` (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) and
``tcp_user_timeout`` (TCP_USER_TIMEOUT).  The silent server never answers
the startup message, so the client waits until the connection dies.
"""

import sys
import time

if sys.argv[1] == "--psycopg2":
    import psycopg2 as driver
    conninfo = sys.argv[2]
else:
    import psycopg as driver  # type: ignore[no-redef]
    conninfo = sys.argv[1]

started = time.monotonic()
try:
    driver.connect(conninfo)
except driver.Error as exc:
    print(f"gave up after {time.monotonic() - started:.3f} s: {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
