"""A gRPC (grpcio) client for netkit's gallery: open a channel to HOST:PORT and wait.

    usage: grpc_client.py HOST:PORT [KEEPALIVE_TIME_MS [KEEPALIVE_TIMEOUT_MS]]

gRPC never sets SO_KEEPALIVE.  With ``grpc.keepalive_time_ms`` it sends an
HTTP/2 PING every that many ms and sets TCP_USER_TIMEOUT to
``grpc.keepalive_timeout_ms`` (default 20000), so the PING left unanswered
after the break is retransmitted until the user timeout kills the socket.
Without keepalive options nothing in the kernel watches the idle socket:
against netkit's silent server (which never finishes the HTTP/2 handshake)
gRPC's own 20 s connect deadline closes it.
"""

import sys
import time

import grpc

target = sys.argv[1]
options = []
if len(sys.argv) > 2:
    options.append(("grpc.keepalive_time_ms", int(sys.argv[2])))
    if len(sys.argv) > 3:
        options.append(("grpc.keepalive_timeout_ms", int(sys.argv[3])))
    options += [("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
channel = grpc.insecure_channel(target, options=options)
started = time.monotonic()
channel.subscribe(lambda state: print(f"{time.monotonic() - started:8.3f} s  {state.name}", flush=True),
                  try_to_connect=True)
time.sleep(3600)
