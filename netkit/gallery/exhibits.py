"""The gallery's exhibits: real programs, the settings they are run with, and what netkit expects of each. Pure.

An exhibit is one ``netkit check-client`` or ``check-server`` run of a real
program (the small programs and launchers are in ``examples/gallery/``).
Its expectation is one of:

- ``KERNEL_RULE``: the kernel ends the connection (keepalive, TCP_USER_TIMEOUT
  on the probes) and the death must fall in netkit's model window for the
  settings *read off the program's socket* -- never before it;
- ``SURVIVES``: behind a router that forgets idle flows, the keepalive is
  shorter than the router's timeout and the connection is still up at the end;
- ``OWN_TIMER``: the program ends it with a timer of its own (a deadline, a
  socket timeout, an application-level ping whose retransmissions a user
  timeout ends): measured, with no kernel rule to judge it by.

Commands are argv lists with placeholders: ``{host}`` and ``{port}`` are
check-client's (the silent server), ``{examples}`` the examples directory,
``{python}`` the interpreter netkit runs on (where the ``gallery`` extra's
PyPI packages are), ``{go_client}`` the Go example built for this machine.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..errors import SettingError

KERNEL_RULE = "kernel-rule"
SURVIVES = "survives"
OWN_TIMER = "own-timer"
EXPECTATIONS = (KERNEL_RULE, SURVIVES, OWN_TIMER)
MIDDLEBOX_TIMEOUT_S = 3  # a 350 s load-balancer idle timeout (AWS NLB), scaled down
PG_CONNINFO = "host={host} port={port} user=nk dbname=nk"


@dataclass(frozen=True)
class Exhibit:
    """One program run through check-client (``side`` "client") or check-server ("server")."""

    name: str  # unique, for --only and the tests
    program: str  # as the table names it
    ecosystem: str  # Go, JavaScript, Python, C ...
    side: str  # "client" or "server"
    settings: str  # what it was run with, in the program's own words
    command: tuple[str, ...]
    needs: tuple[str, ...]  # requirements (netkit.gallery.programs.REQUIREMENTS)
    version: str  # whose version the table shows (a key of netkit.gallery.programs.VERSIONS)
    expect: str  # one of EXPECTATIONS
    causes: tuple[str, ...]  # the ways of ending it that the expectation accepts (check-client's CAUSES)
    advice: str  # one sentence: set X to get Y
    wait_s: float = 30.0  # check-client's --max-wait / check-server's --timeout
    port: int = 0  # check-server: where the program listens
    middlebox_timeout_s: int | None = None  # check-client --middlebox-timeout (the routed topology)
    takes_s: float = 10.0  # about how long the run takes: the longest start first

    def check_args(self) -> list[str]:
        """The netkit subcommand and its options, ending with ``--``, before the command."""
        if self.side == "server":
            return ["check-server", "--json", "--port", str(self.port), "--timeout", f"{self.wait_s:g}", "--"]
        args = ["check-client", "--json", "--max-wait", f"{self.wait_s:g}"]
        if self.middlebox_timeout_s is not None:
            args += ["--middlebox-timeout", str(self.middlebox_timeout_s)]
        return [*args, "--"]

    @property
    def topology(self) -> str:
        if self.middlebox_timeout_s is None:
            return "direct"
        return f"behind a router that forgets flows idle {self.middlebox_timeout_s} s"


def _client(name: str, program: str, ecosystem: str, settings: str, command: tuple[str, ...], needs: tuple[str, ...],
            version: str, expect: str, causes: tuple[str, ...], advice: str, **kw: float | int | None) -> Exhibit:
    return Exhibit(name, program, ecosystem, "client", settings, command, needs, version, expect, causes, advice,
                   **kw)  # type: ignore[arg-type]


def _server(name: str, program: str, settings: str, command: tuple[str, ...], needs: tuple[str, ...], version: str,
            port: int, causes: tuple[str, ...], advice: str) -> Exhibit:
    return Exhibit(name, program, "C", "server", settings, command, needs, version, KERNEL_RULE, causes, advice,
                   wait_s=60, port=port)


GO = ("{go_client}",)
NODE = ("node", "{examples}/node/client.js", "{host}", "{port}")
GRPC = ("{python}", "{examples}/python/grpc_client.py", "{host}:{port}")
REDIS = ("{python}", "{examples}/python/redis_client.py", "{host}", "{port}")
PSYCOPG = ("{python}", "{examples}/python/psycopg_client.py")
PSYCOPG2 = ("/usr/bin/python3", "{examples}/python/psycopg_client.py", "--psycopg2")
LAUNCH = ("{python}", "{examples}/servers/launch.py")
KEEPALIVE_113 = ("--idle", "1", "--intvl", "1", "--cnt", "3")

EXHIBITS: tuple[Exhibit, ...] = (
    _client("go-dial-defaults", "Go net.Dial", "Go", "defaults (Dialer.KeepAlive 15 s)",
            (*GO, "default", "{host}", "{port}"), ("go",), "go", KERNEL_RULE, ("keepalive",),
            "Go sets its 15 s as both idle and interval and leaves the count to the system (9): 150 s; set "
            "Dialer.KeepAlive lower, or Dialer.KeepAliveConfig (Go 1.23+) for all three",
            wait_s=200, takes_s=152),
    _client("go-dial-keepalive-1s", "Go net.Dial", "Go", "Dialer{KeepAlive: time.Second}",
            (*GO, "keepalive-1s", "{host}", "{port}"), ("go",), "go", KERNEL_RULE, ("keepalive",),
            "KeepAlive 1 s gives idle 1 s and intvl 1 s, but the count is still the system's: 1 + 1 x 9 = 10 s"),
    _client("node-keepalive-1000", "Node.js net.Socket", "JavaScript", "setKeepAlive(true, 1000)",
            (*NODE, "1000"), ("node",), "node", KERNEL_RULE, ("keepalive",),
            "libuv adds 1 s x 10 probes to the delay whatever the system says: expect delay + 10 s"),
    _client("grpc-keepalive-1000-3000", "gRPC (grpcio)", "Python",
            "keepalive_time_ms 1000, keepalive_timeout_ms 3000 (HTTP/2 handshake unanswered)",
            (*GRPC, "1000", "3000"), ("python:grpc",), "grpcio", OWN_TIMER, ("retransmission",),
            "gRPC sets no SO_KEEPALIVE: its own PING (keepalive_time_ms) goes unanswered and TCP_USER_TIMEOUT "
            "(keepalive_timeout_ms) ends it; set both to bound the wait"),
    _client("grpc-no-keepalive", "gRPC (grpcio)", "Python", "no keepalive options (HTTP/2 handshake unanswered)",
            GRPC, ("python:grpc",), "grpcio", OWN_TIMER, ("application-fin", "application-reset", "application-exit"),
            "only gRPC's 20 s connect deadline ends a handshake; an established channel without keepalive_time_ms "
            "has nothing watching it", wait_s=40, takes_s=22),
    _client("redis-py-keepalive-1-1-3", "redis-py", "Python", "socket_keepalive, socket_keepalive_options 1/1/3",
            (*REDIS, "1", "1", "3"), ("python:redis",), "redis-py", KERNEL_RULE, ("keepalive",),
            "socket_keepalive_options sets all three: idle + intvl x cnt, as the kernel's rule says"),
    _client("redis-py-socket-keepalive-only", "redis-py", "Python", "socket_keepalive=True only",
            REDIS, ("python:redis",), "redis-py", OWN_TIMER, ("application-exit", "application-fin"),
            "socket_keepalive alone means the system's 7200/75/9 (over two hours); redis-py's own socket_timeout "
            "answers first"),
    _client("psycopg-keepalives-ut-5000", "psycopg 3 (libpq from PyPI)", "Python",
            "keepalives_idle 1, keepalives_interval 1, keepalives_count 3, tcp_user_timeout 5000",
            (*PSYCOPG, PG_CONNINFO + " keepalives_idle=1 keepalives_interval=1 keepalives_count=3 "
                                    "tcp_user_timeout=5000"), ("python:psycopg",), "psycopg", KERNEL_RULE,
            ("user-timeout",),
            "a tcp_user_timeout longer than idle + intvl x cnt overrides the count: the probes go on until it expires"),
    _client("psycopg2-keepalives-2-1-2", "psycopg2 (Debian's libpq)", "Python",
            "keepalives_idle 2, keepalives_interval 1, keepalives_count 2",
            (*PSYCOPG2, PG_CONNINFO + " keepalives_idle=2 keepalives_interval=1 keepalives_count=2"),
            ("python3-psycopg2",), "psycopg2", KERNEL_RULE, ("keepalive",),
            "libpq's keepalives_* map one to one onto the kernel's options: idle + intvl x cnt"),
    _client("pgbouncer-to-server-1-1-3", "pgbouncer (to its server)", "C",
            "tcp_keepalive 1, tcp_keepidle 1, tcp_keepintvl 1, tcp_keepcnt 3",
            (*LAUNCH, "pgbouncer-client", "--host", "{host}", "--port", "{port}", *KEEPALIVE_113),
            ("pgbouncer", "psql", "postgres-user"), "pgbouncer", KERNEL_RULE, ("keepalive",),
            "pgbouncer's tcp_keep* apply to its server connections too: set them, or a dead server holds the pool"),
    _client("haproxy-to-server-srvtcpka-1-1-3", "HAProxy (to its server)", "C",
            "option srvtcpka, srvtcpka-idle 1s, srvtcpka-intvl 1s, srvtcpka-cnt 3",
            (*LAUNCH, "haproxy-client", "--host", "{host}", "--port", "{port}", *KEEPALIVE_113),
            ("haproxy",), "haproxy", KERNEL_RULE, ("keepalive",),
            "srvtcpka alone takes the system's 7200/75/9; set srvtcpka-idle/intvl/cnt for a bound"),
    _server("postgres-keepalives-1-1-3", "PostgreSQL server", "tcp_keepalives_idle 1, _interval 1, _count 3",
            (*LAUNCH, "postgres-server", "--port", "5433", *KEEPALIVE_113), ("postgres", "postgres-user"),
            "postgres", 5433, ("keepalive",),
            "the server's tcp_keepalives_* free a dead client's backend in idle + intvl x cnt"),
    _server("postgres-keepalives-ut-2500", "PostgreSQL server",
            "tcp_keepalives 1/1/9, tcp_user_timeout 2500",
            (*LAUNCH, "postgres-server", "--port", "5433", "--idle", "1", "--intvl", "1", "--cnt", "9",
             "--user-timeout-ms", "2500"), ("postgres", "postgres-user"), "postgres", 5433, ("user-timeout",),
            "a tcp_user_timeout shorter than the keepalive's count ends the probes early: the first run past it"),
    _server("pgbouncer-keepalive-1-1-3", "pgbouncer (to its clients)", "tcp_keepidle 1/1/3, tcp_defer_accept on",
            (*LAUNCH, "pgbouncer-server", "--port", "6432", *KEEPALIVE_113), ("pgbouncer", "postgres-user"),
            "pgbouncer", 6432, ("keepalive",),
            "the keepalive starts only once the deferred accept (TCP_DEFER_ACCEPT) has handed the connection over"),
    _server("haproxy-clitcpka-1-1-3", "HAProxy (to its clients)", "option clitcpka, clitcpka-idle/intvl/cnt 1s/1s/3",
            (*LAUNCH, "haproxy-server", "--port", "8080", *KEEPALIVE_113), ("haproxy",), "haproxy", 8080,
            ("keepalive",), "clitcpka-idle/intvl/cnt bound a dead client's connection: idle + intvl x cnt"),
    _server("nginx-so-keepalive-1-1-3", "nginx", "listen ... so_keepalive=1:1:3",
            (*LAUNCH, "nginx-server", "--port", "8081", *KEEPALIVE_113), ("nginx",), "nginx", 8081, ("keepalive",),
            "so_keepalive on the listen line is inherited by every accepted connection"),
    _server("redis-server-tcp-keepalive-3", "Redis server", "tcp-keepalive 3",
            ("redis-server", "--bind", "198.18.0.1", "--port", "6379", "--tcp-keepalive", "3", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"), ("redis-server",), "redis-server", 6379, ("keepalive",),
            "tcp-keepalive N sets idle N, intvl N/3 and cnt 3: a dead client goes after about 2N s"),
    _client("node-keepalive-1000-middlebox", "Node.js net.Socket", "JavaScript", "setKeepAlive(true, 1000)",
            (*NODE, "1000"), ("node", "nft"), "node", SURVIVES, ("none",),
            "a keepalive idle below the middlebox's idle timeout keeps the flow: every probe refreshes its entry",
            wait_s=10, middlebox_timeout_s=MIDDLEBOX_TIMEOUT_S),
    _client("go-dial-keepalive-1s-middlebox", "Go net.Dial", "Go", "Dialer{KeepAlive: time.Second}",
            (*GO, "keepalive-1s", "{host}", "{port}"), ("go", "nft"), "go", SURVIVES, ("none",),
            "Go's defaults (15 s) would also keep a 350 s load balancer's flow; 1 s keeps a 3 s one",
            wait_s=10, middlebox_timeout_s=MIDDLEBOX_TIMEOUT_S),
    _client("psycopg2-keepalives-5-1-3-middlebox", "psycopg2 (Debian's libpq)", "Python",
            "keepalives_idle 5, keepalives_interval 1, keepalives_count 3",
            (*PSYCOPG2, PG_CONNINFO + " keepalives_idle=5 keepalives_interval=1 keepalives_count=3"),
            ("python3-psycopg2", "nft"), "psycopg2", KERNEL_RULE, ("keepalive",),
            "a keepalive idle above the middlebox's timeout comes too late: the router has forgotten the flow and "
            "drops the probes, so the client dies as if the server had; keep idle below the timeout",
            middlebox_timeout_s=MIDDLEBOX_TIMEOUT_S),
)
assert len({e.name for e in EXHIBITS}) == len(EXHIBITS), "exhibit names are unique"
assert all(e.expect in EXPECTATIONS and e.side in ("client", "server") for e in EXHIBITS)


def select(patterns: list[str] | None) -> list[Exhibit]:
    """The exhibits whose names match any of the shell-style patterns (all of them without); an unknown one is an error."""
    if not patterns:
        return list(EXHIBITS)
    chosen = [e for e in EXHIBITS if any(fnmatch.fnmatchcase(e.name, p) for p in patterns)]
    if not chosen:
        raise SettingError("--only", " ".join(patterns), "no exhibit matches: `netkit gallery --list` names them")
    return chosen


__all__ = ["EXHIBITS", "EXPECTATIONS", "KERNEL_RULE", "MIDDLEBOX_TIMEOUT_S", "OWN_TIMER", "SURVIVES", "Exhibit",
           "select"]
