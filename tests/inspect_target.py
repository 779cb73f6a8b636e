"""A process for ``netkit inspect``'s tests: a connected TCP pair on 127.0.0.1 of its own namespace.

The client end gets SO_KEEPALIVE and, with ``--user-timeout MS``, TCP_USER_TIMEOUT;
the accepted end only SO_KEEPALIVE: neither sets TCP_KEEPIDLE/INTVL/CNT, so both
inherit the namespace's sysctls.  With ``--rto-max-ms MS`` both ends set
TCP_RTO_MAX_MS (Linux 6.15+).  Prints "ready" and waits until killed.
"""

import argparse
import signal
import socket
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--user-timeout", type=int)
parser.add_argument("--rto-max-ms", type=int)
args = parser.parse_args()
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()
for sock in (client, accepted):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
if args.user_timeout:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, args.user_timeout)
if args.rto_max_ms:
    for sock in (client, accepted):
        sock.setsockopt(socket.IPPROTO_TCP, 44, args.rto_max_ms)  # TCP_RTO_MAX_MS
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
sys.exit(0)
