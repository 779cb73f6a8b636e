"""Servers and proxies for netkit's gallery, each started from a configuration written at run time.

    usage: launch.py PROGRAM ARGS...     (``launch.py --help`` lists them)

``netkit check-server`` and ``netkit check-client`` run one command in a lab
namespace and stop it with SIGTERM.  The programs here need more than a
command line: a configuration file with the lab's address and port in it, a
user other than root (PostgreSQL and pgbouncer refuse root), and for the
proxies a local client whose connection makes them open theirs to the
server.  This launcher writes the files into a private temporary directory,
starts the program (and the local client) in the background, passes SIGTERM
and SIGINT on, waits for them, and removes the directory: a wrapper that ran
the program in the foreground would not see SIGTERM until it exited.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LAB_SERVER = "198.18.0.1"  # netkit's lab: the server namespace's address (check-server's programs listen there)
LOCAL_PORT = 6432  # where a proxy listens, inside the lab's client namespace, for its local client


def as_user(user: str | None, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` (setpriv, no login shell), or as it is."""
    if user is None:
        return argv
    return ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *argv]


def private_dir(user: str | None) -> str:
    path = tempfile.mkdtemp(prefix="nk-gallery-")
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def write(path: str, text: str, user: str | None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in this namespace (/proc/net/tcp, state 0A).

    Read, not tried: a trial connection to a proxy would make it open (and
    close) a connection to its server -- the very connection being checked.
    """
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def wait_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not listening(port):
        if time.monotonic() > deadline:
            sys.exit(f"launch.py: nothing listened on port {port} within {timeout_s:g} s")
        time.sleep(0.05)


Child = list[str] | tuple[int, list[str]]  # a command, or (a port to wait for, then the command)


def run(children: list[Child], directory: str, main: int = -1) -> int:
    """Start ``children`` in order, pass SIGTERM/SIGINT on, return when ``children[main]`` ends; clean up."""
    procs: list[subprocess.Popen[bytes]] = []

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for argv in children:
            if isinstance(argv, tuple):
                port, argv = argv
                wait_listening(port)
            procs.append(subprocess.Popen(argv))
        return procs[main].wait()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def postgres_bin(name: str) -> str:
    """``/usr/lib/postgresql/<major>/bin/<name>`` of the newest major installed (Debian's layout)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        sys.exit(f"launch.py: no /usr/lib/postgresql/*/bin/{name}: apt-get install postgresql")
    return found[-1]


def postgres_server(a: argparse.Namespace) -> int:
    """PostgreSQL with tcp_keepalives_* (and tcp_user_timeout) set on the command line, its own data directory."""
    d = private_dir("postgres")
    initdb = subprocess.run(as_user("postgres", [postgres_bin("initdb"), "-D", f"{d}/data", "-A", "trust", "-U", "nk"]),
                            stdout=subprocess.DEVNULL, check=False)
    if initdb.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        return initdb.returncode
    settings = {"listen_addresses": LAB_SERVER, "port": a.port, "unix_socket_directories": "",
                "tcp_keepalives_idle": a.idle, "tcp_keepalives_interval": a.intvl, "tcp_keepalives_count": a.cnt,
                "tcp_user_timeout": a.user_timeout_ms}
    argv = [postgres_bin("postgres"), "-D", f"{d}/data"]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return run([as_user("postgres", argv)], d)


def pgbouncer_ini(d: str, listen: str, port: int, server: str, server_port: int, a: argparse.Namespace) -> str:
    write(f"{d}/userlist.txt", '"nk" ""\n', "postgres")
    return f"""[databases]
nk = host={server} port={server_port} dbname=nk user=nk
[pgbouncer]
listen_addr = {listen}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {d}/userlist.txt
pool_mode = session
pidfile =
server_connect_timeout = 600
query_wait_timeout = 0
tcp_keepalive = 1
tcp_keepidle = {a.idle}
tcp_keepintvl = {a.intvl}
tcp_keepcnt = {a.cnt}
"""


def pgbouncer_server(a: argparse.Namespace) -> int:
    """pgbouncer facing its clients: Debian's default tcp_defer_accept stays on (accept waits for data)."""
    d = private_dir("postgres")
    write(f"{d}/pgbouncer.ini", pgbouncer_ini(d, LAB_SERVER, a.port, "127.0.0.1", 5432, a), "postgres")
    return run([as_user("postgres", ["pgbouncer", f"{d}/pgbouncer.ini"])], d)


def pgbouncer_client(a: argparse.Namespace) -> int:
    """pgbouncer facing its server: psql connects through it, so pgbouncer opens its connection to HOST:PORT."""
    d = private_dir("postgres")
    write(f"{d}/pgbouncer.ini", pgbouncer_ini(d, "127.0.0.1", LOCAL_PORT, a.host, a.port, a), "postgres")
    psql = ["psql", f"host=127.0.0.1 port={LOCAL_PORT} user=nk dbname=nk", "-c", "select 1"]
    return run([as_user("postgres", ["pgbouncer", f"{d}/pgbouncer.ini"]), (LOCAL_PORT, psql)], d, main=0)


def haproxy_cfg(d: str, frontend: str, backend: str) -> str:
    path = f"{d}/haproxy.cfg"
    write(path, f"""global
    log stderr format short local0 info
defaults
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout http-request 1h
{frontend}
{backend}
""", None)
    return path


def haproxy_server(a: argparse.Namespace) -> int:
    """haproxy facing its clients: ``option clitcpka`` with clitcpka-idle/intvl/cnt."""
    d = private_dir(None)
    cfg = haproxy_cfg(d, f"""frontend clients
    mode http
    bind {LAB_SERVER}:{a.port}
    option clitcpka
    clitcpka-idle {a.idle}s
    clitcpka-intvl {a.intvl}s
    clitcpka-cnt {a.cnt}
    default_backend nowhere""", """backend nowhere
    mode http
    server none 127.0.0.1:9""")
    return run([["haproxy", "-db", "-f", cfg]], d)


def haproxy_client(a: argparse.Namespace) -> int:
    """haproxy facing its server: ``option srvtcpka``; a silent local client through it opens the connection."""
    d = private_dir(None)
    cfg = haproxy_cfg(d, f"""frontend local
    mode tcp
    bind 127.0.0.1:{LOCAL_PORT}
    default_backend server""", f"""backend server
    mode tcp
    option srvtcpka
    srvtcpka-idle {a.idle}s
    srvtcpka-intvl {a.intvl}s
    srvtcpka-cnt {a.cnt}
    server s1 {a.host}:{a.port}""")
    local = [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {LOCAL_PORT})).recv(1)"]
    return run([["haproxy", "-db", "-f", cfg], (LOCAL_PORT, local)], d, main=0)


def nginx_server(a: argparse.Namespace) -> int:
    """nginx with ``listen ... so_keepalive=IDLE:INTVL:CNT`` (set on the listener, inherited by accepted sockets)."""
    d = private_dir(None)
    write(f"{d}/nginx.conf", f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {LAB_SERVER}:{a.port} so_keepalive={a.idle}:{a.intvl}:{a.cnt};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""", None)
    return run([["nginx", "-e", "stderr", "-p", d, "-c", f"{d}/nginx.conf"]], d)


PROGRAMS = {"postgres-server": postgres_server, "pgbouncer-server": pgbouncer_server,
            "pgbouncer-client": pgbouncer_client, "haproxy-server": haproxy_server,
            "haproxy-client": haproxy_client, "nginx-server": nginx_server}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("program", choices=list(PROGRAMS))
    parser.add_argument("--host", default=LAB_SERVER, help="the server a proxy connects to (clients)")
    parser.add_argument("--port", type=int, required=True, help="where a server listens, or a proxy connects")
    parser.add_argument("--idle", type=int, required=True)
    parser.add_argument("--intvl", type=int, required=True)
    parser.add_argument("--cnt", type=int, required=True)
    parser.add_argument("--user-timeout-ms", type=int, default=0, help="PostgreSQL's tcp_user_timeout")
    args = parser.parse_args()
    return PROGRAMS[args.program](args)


if __name__ == "__main__":
    sys.exit(main())
