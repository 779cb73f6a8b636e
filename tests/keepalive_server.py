#!/usr/bin/env python3
"""A tiny TCP server for `netkit check-server` tests: accepts, keeps every
connection open and silent, and closes a connection when it errors or ends.

    keepalive_server.py --bind ADDR --port P [--idle S --intvl S --cnt N | --no-keepalive]

With keepalive, the options are set on each *accepted* socket, idle/intvl/cnt
first, then SO_KEEPALIVE (as many servers do).  Runs until SIGTERM.
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
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.bind, args.port))
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
