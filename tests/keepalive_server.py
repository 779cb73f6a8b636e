#!/usr/bin/env python3
"""A tiny TCP server for `netkit check-server` tests: accepts, keeps every
connection open and silent, and closes a connection when it errors or ends.

    keepalive_server.py --bind ADDR --port P [--idle S --intvl S --cnt N | --no-keepalive]
                        [--user-timeout MS] [--defer-accept S]

With keepalive, the options are set on each *accepted* socket, idle/intvl/cnt
first, then SO_KEEPALIVE (as many servers do); ``--user-timeout`` sets
TCP_USER_TIMEOUT there too (as PostgreSQL's ``tcp_user_timeout`` does), and
``--defer-accept`` TCP_DEFER_ACCEPT on the listener (as pgbouncer's default
and nginx's ``deferred`` do).  Runs until SIGTERM.
"""

import argparse
import selectors
import signal
import socket
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle", type=int, default=1)
    parser.add_argument("--intvl", type=int, default=1)
    parser.add_argument("--cnt", type=int, default=3)
    parser.add_argument("--no-keepalive", action="store_true")
    parser.add_argument("--user-timeout", type=int)
    parser.add_argument("--defer-accept", type=int)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.bind, args.port))
    if args.defer_accept is not None:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, args.defer_accept)
    listener.listen(16)
    print(f"listening on {args.bind} port {args.port}", file=sys.stderr, flush=True)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                conn, _ = listener.accept()
                if not args.no_keepalive:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, args.idle)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, args.intvl)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, args.cnt)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if args.user_timeout is not None:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, args.user_timeout)
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(4096)
            except OSError as exc:
                print(f"connection closed: {exc}", file=sys.stderr, flush=True)
                data = b""
            if not data:
                sel.unregister(sock)
                sock.close()


if __name__ == "__main__":
    sys.exit(main())
