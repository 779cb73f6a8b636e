"""The ``netkit`` command: demo, doctor, cleanup (check-server lives in its own module).

Exit codes are part of the interface, the same for every subcommand and in
the docs' table (:mod:`netkit.exitcodes`): 0 pass (doctor: netkit can run
here), 1 a failed proof (the kernel did not do what the rule predicts), 2 bad
input or usage, 4 cannot run here (no privileges, a missing kernel feature;
doctor: it cannot run here; the message on stderr says what to do), 130
interrupted.

``--json`` is a flag that prints exactly one JSON object on stdout, in every
command but the gate's (and the gallery's), which write several reports at
once, each to its own file (``--json FILE``, ``-`` for stdout): see
:data:`netkit.gate.command.HELP`.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
from typing import TextIO

from .. import __version__
from ..cleanup import cleanup
from ..doctor import as_dicts, run_checks, usable
from ..enums import FaultName, State
from ..errors import (
    EnvironmentUnusable,
    InputError,
    NetkitError,
    NotModelled,
    SettingError,
    Terminated,
    raise_terminated,
)
from ..exitcodes import EXIT_BAD_INPUT, EXIT_CANNOT_RUN_HERE, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, EXIT_TERMINATED
from ..faults import DIRECT_FAULTS
from ..keepalive import KeepaliveSettings
from ..kernel import kernel_info
from ..model.prediction import DeathPrediction
from ..privileges import require_privileges
from ..report.text import COUNTED, demo_header, live_count, print_demo_result
from ..scenario import KEEPALIVE_SOURCES, SIDES, STATES, Progress, Scenario, run_scenario
from ..scenario.requirements import require_supported
from ..scenario.run import check_capture_paths
from ..scenario.spec import MAX_SYN_RETRIES
from .help import Formatter, examples

DEMO_DESCRIPTION = """\
Build two throwaway network namespaces joined by a veth pair, connect a server
and a client, break the path (--fault), and time when the kernel kills the
tested side's connection, against the kernel's own rule and within its timer
rounding. Needs root.

Exit status: 0 the kernel did what the rule predicts, 1 it did not, 2 bad input
(an option out of range, a combination netkit has no rule for), 4 cannot run
here (not root, a kernel feature the run needs is missing), 130 interrupted."""
DEMO_EXAMPLES = examples(
    "netkit demo                                     # server keepalive 1/1/10, the peer's link down",
    "netkit demo --idle 2 --intvl 1 --cnt 2 --ipv6",
    "netkit demo --state unacked --fault blackhole --user-timeout 3000",
    "netkit demo --idle 1 --intvl 1 --cnt 1 --json   # the result as one JSON object (netkit.scenario-result/3)",
)
DEMO_SYN_RETRIES = 2  # a handshake demo's default: connect() gives up after about 7 s, a request after 7 s

FIELD_OPTIONS = {"middlebox_timeout_s": "--middlebox-timeout", "middlebox": "--middlebox", "masquerade": "--masquerade",
                  "topology": "--topology", "keepalive": "--idle/--intvl against --middlebox-timeout",
                  "rto_max_ms": "--rto-max-ms", "rto_max_via": "--rto-max-via", "rto_min_us": "--rto-min-us",
                  "rto_min_via": "--rto-min-via"}


class LiveTimeline:
    """Prints the demo's timeline while the kernel works.

    On a terminal a status line (elapsed, probes, time left) is redrawn in
    place; each new probe gets a permanent line on any output.
    """

    def __init__(self, out: TextIO, expected: int, what: str) -> None:
        self.out = out
        self.expected = expected
        self.what = what
        self.tty = out.isatty()
        self.count = 0

    def __call__(self, p: Progress) -> None:
        if p.count != self.count:
            self.count = p.count
            self._clear()
            print(f"  {p.elapsed_s:7.3f} s  {self.what} {p.count}/{self.expected}", file=self.out)
        if self.tty:
            left = p.expected_s - p.elapsed_s
            self.out.write(
                f"\r  {p.elapsed_s:7.3f} s  {self.what}s {p.count}/{self.expected}  expected death in {max(left, 0):6.3f} s"
            )
            self.out.flush()

    def _clear(self) -> None:
        if self.tty:
            self.out.write("\r\033[K")

    def finish(self) -> None:
        self._clear()


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        settings = KeepaliveSettings(idle=args.idle, intvl=args.intvl, cnt=args.cnt, user_timeout_ms=args.user_timeout)
    except SettingError as exc:
        print(f"netkit demo: {exc} (check {_option(exc)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    routed = args.topology == "routed"
    fault = args.fault or (FaultName.MIDDLEBOX_FORGETS if routed else FaultName.LINK_DOWN)
    try:
        scenario = Scenario(settings, "ipv6" if args.ipv6 else "ipv4", fault, args.state, args.side,
                            args.keepalive_via, args.retries2, topology=args.topology,
                            middlebox_timeout_s=args.middlebox_timeout, middlebox=args.middlebox or "drop",
                            masquerade=args.masquerade, syn_retries=_syn_retries(args), rto_max_ms=args.rto_max_ms,
                            rto_max_via=args.rto_max_via, rto_min_us=args.rto_min_us, rto_min_via=args.rto_min_via)
    except SettingError as exc:
        print(f"netkit demo: {exc} (check {_option(exc)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    check_capture_paths(args.pcap, None)  # bad input first, then the machine
    require_privileges()
    require_supported(scenario)
    out = sys.stdout
    live = _DemoLive(scenario, out) if not args.json else None
    try:
        result = run_scenario(scenario, on_progress=live, on_prediction=live.announce if live else None,
                              keep_failed=args.keep_failed, pcap=args.pcap)
    finally:
        if live:
            live.finish()
    if args.json:
        print(result.to_json(), file=out)
    else:
        print_demo_result(result, out)
    return EXIT_PASS if result.verdict == "pass" else EXIT_FAIL


def _option(exc: SettingError) -> str:
    """The demo's option for a setting's field: "user_timeout_ms (TCP_USER_TIMEOUT)" -> "--user-timeout"."""
    field = exc.field.split()[0]
    return FIELD_OPTIONS.get(field) or "--" + field.replace("_ms", "").replace("_", "-")


def _syn_retries(args: argparse.Namespace) -> int | None:
    """--syn-retries as given; for a handshake state without it, DEMO_SYN_RETRIES (seconds, not minutes)."""
    if args.syn_retries is None and State(args.state).handshake:
        return DEMO_SYN_RETRIES
    return int(args.syn_retries) if args.syn_retries is not None else None


class _DemoLive:
    """The demo's live part: the header once the run has made its prediction, then the timeline."""

    def __init__(self, scenario: Scenario, out: TextIO) -> None:
        self.scenario = scenario
        self.out = out
        self.timeline: LiveTimeline | None = None

    def announce(self, prediction: DeathPrediction) -> None:
        """Print the prediction the run will be judged by (the one it made, with the connection's RTO)."""
        for line in demo_header(self.scenario, kernel_info(), prediction):
            print(line, file=self.out)
        self.out.flush()
        source, expected = live_count(prediction)
        self.timeline = LiveTimeline(self.out, expected, COUNTED[source])

    def __call__(self, p: Progress) -> None:
        if self.timeline:
            self.timeline(p)

    def finish(self) -> None:
        if self.timeline:
            self.timeline.finish()


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks()
    ok = usable(checks)
    if args.json:
        print(json.dumps({"usable": ok, "checks": as_dicts(checks)}))
    else:
        for c in checks:
            mark = "ok     " if c.present else ("MISSING" if c.essential else "missing")
            print(f"{mark} {c.name:<19} {c.detail}")
        print("netkit can run here." if ok else "netkit cannot run here: fix the MISSING items above.")
    return EXIT_PASS if ok else EXIT_CANNOT_RUN_HERE


def cmd_cleanup(args: argparse.Namespace) -> int:
    require_privileges("to remove the network namespaces netkit kept under /run/netns and its tracefs instances")
    report = cleanup(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    if args.json:
        print(json.dumps(report.__dict__))
        return EXIT_PASS
    lines = [  # (what was found, the sentence for each)
        (report.removed, f"{verb} namespace {{}} (its netkit process is gone)"),
        (report.kept_alive_owner, "left namespace {}: its netkit process still runs"),
        (report.foreign, "left namespace {}: not a netkit name (nk-<pid>-<id>-<role>)"),
        (report.host_interfaces, "left host interface {}: netkit never creates host interfaces, so it is not netkit's"),
        (report.run_dirs, f"{verb} temporary directory {{}} (its netkit process is gone)"),
        (report.trace_instances, f"{verb} tracefs instance {{}} (its netkit process is gone)"),
        (report.trace_kept_alive_owner,
         "left tracefs instance {}: its netkit process still runs (or runs where this one cannot see)"),
        (report.trace_foreign, "left tracefs instance {}: not a netkit name (nk-<pid>-<pidns>-<id>)"),
    ]
    for names, sentence in lines:
        for name in names:
            print(sentence.format(name))
    if not any(names for names, _ in lines):
        print("nothing to clean up")
    return EXIT_PASS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netkit", description="Prove on this kernel how and when TCP connections die.",
                                     epilog=examples("netkit doctor", "netkit demo", "netkit demo --help"),
                                     formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"netkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="drop a keepalive-guarded connection's peer link and time its death",
                          description=DEMO_DESCRIPTION, epilog=DEMO_EXAMPLES)
    demo.add_argument("--idle", type=int, default=1, help="TCP_KEEPIDLE, seconds (1..32767, default 1)")
    demo.add_argument("--intvl", type=int, default=1, help="TCP_KEEPINTVL, seconds (1..32767, default 1)")
    demo.add_argument("--cnt", type=int, default=10, help="TCP_KEEPCNT, probes (1..127, default 10)")
    demo.add_argument("--user-timeout", type=int, metavar="MS", help="TCP_USER_TIMEOUT in ms (default: not set)")
    demo.add_argument("--fault", choices=[*DIRECT_FAULTS, FaultName.MIDDLEBOX_FORGETS, FaultName.PEER_HANGS],
                      help="how the peer goes away (default link-down; with --topology routed: middlebox-forgets; "
                           "with a window state, peer-hangs: it stays up and answers)")
    demo.add_argument("--state", default="idle", choices=list(STATES), help="the connection's state when the peer goes away")
    demo.add_argument("--side", default="server", choices=list(SIDES),
                      help="whose keepalive is tested; the other side is the peer that goes away (default server)")
    demo.add_argument("--keepalive-via", default="socket", choices=list(KEEPALIVE_SOURCES),
                      help="per-socket options, or the namespace's net.ipv4.tcp_keepalive_* sysctls")
    demo.add_argument("--retries2", type=int, metavar="N",
                      help="net.ipv4.tcp_retries2 in the tested namespace (data states without --user-timeout)")
    demo.add_argument("--rto-max-ms", type=int, metavar="MS",
                      help="data states: the tested socket's maximum RTO, 1000..120000 ms (Linux 6.15+; default: the "
                           "kernel's 120 s), set with TCP_RTO_MAX_MS or, with --rto-max-via sysctl, net.ipv4.tcp_rto_max_ms")
    demo.add_argument("--rto-max-via", default="socket", choices=list(KEEPALIVE_SOURCES),
                      help="where --rto-max-ms is set: the socket option (default) or the tested namespace's sysctl")
    demo.add_argument("--rto-min-us", type=int, metavar="US",
                      help="data states: the minimum RTO, 10000..1000000 us: net.ipv4.tcp_rto_min_us in the tested "
                           "namespace (Linux 6.11+) or, with --rto-min-via route, the route to the peer's rto_min")
    demo.add_argument("--rto-min-via", default="sysctl", choices=["sysctl", "route"],
                      help="where --rto-min-us is set: the tested namespace's sysctl (default) or a locked rto_min "
                           "on the tested side's route to its peer (whole ms; any kernel)")
    demo.add_argument("--syn-retries", type=int, metavar="N",
                      help=f"handshake states: TCP_SYNCNT (or with --keepalive-via sysctl net.ipv4.tcp_syn_retries / "
                           f"tcp_synack_retries), 1..{MAX_SYN_RETRIES} (default {DEMO_SYN_RETRIES})")
    demo.add_argument("--topology", default="direct", choices=["direct", "routed"],
                      help="direct: one veth pair (default); routed: client - router - server, the router a stateful "
                           "middlebox that forgets idle flows (needs --middlebox-timeout)")
    demo.add_argument("--middlebox-timeout", type=int, metavar="S",
                      help="routed: the router's conntrack established timeout, seconds (idle above it: the flow is "
                           "forgotten; idle and intvl below it: the probes keep it)")
    demo.add_argument("--middlebox", choices=["drop", "reject"],
                      help="routed: what the router does with a forgotten flow's packets (default drop; reject: a TCP RST)")
    demo.add_argument("--masquerade", action="store_true", help="routed: the router also SNATs the client to its address")
    demo.add_argument("--ipv6", action="store_true", help="use IPv6 (2001:2::/48) instead of IPv4 (198.18.0.0/15)")
    demo.add_argument("--json", action="store_true", help="print exactly one JSON object (the result) on stdout")
    demo.add_argument("--keep-failed", action="store_true", help="on failure keep the lab's namespaces for `ip netns exec`")
    demo.add_argument("--pcap", metavar="FILE",
                      help="write the tested veth's capture to FILE (pcap; a failed run writes one to a temp file anyway)")
    demo.set_defaults(func=cmd_demo)

    doctor = sub.add_parser("doctor", help="what this machine offers netkit",
                            description="What this machine offers netkit: privileges, network namespaces, veth, "
                                        "nftables, netem, tracefs, the kernel and its HZ. Exit 0: netkit can run here; "
                                        "4: it cannot (the MISSING items say what to install or fix).",
                            epilog=examples("netkit doctor", "netkit doctor --json"))
    doctor.add_argument("--json", action="store_true", help="print exactly one JSON object (usable, checks) on stdout")
    doctor.set_defaults(func=cmd_doctor)

    clean = sub.add_parser("cleanup", help="remove namespaces, tracefs instances and temporary directories left by netkit "
                                                "processes that no longer run",
                           description="Remove what netkit processes that no longer run left behind (a killed run): "
                                       "network namespaces under /run/netns, tracefs instances, temporary directories. "
                                       "Anything whose netkit process still runs, and anything not netkit's, is left. "
                                       "Needs root.",
                           epilog=examples("netkit cleanup --dry-run", "netkit cleanup"))
    clean.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    clean.add_argument("--json", action="store_true", help="print exactly one JSON object (what was found) on stdout")
    clean.set_defaults(func=cmd_cleanup)

    from .check_server import add_parser as add_check_server  # its own module: argparse setup and command

    add_check_server(sub)
    from .check_client import add_parser as add_check_client

    add_check_client(sub)
    from .inspect import add_parser as add_inspect

    add_inspect(sub)
    from ..gate.command import add_parser as add_gate

    add_gate(sub)
    from ..kernels.command import add_parser as add_kernels

    add_kernels(sub)
    from .gallery import add_parser as add_gallery

    add_gallery(sub)
    _use_formatter(parser)
    return parser


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's help through :class:`.help.Formatter` (paragraphs filled, examples kept), nested ones too;
    a parser that formats its text itself (RawDescriptionHelpFormatter) keeps it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if child.formatter_class is argparse.HelpFormatter:
                    child.formatter_class = Formatter
                _use_formatter(child)


def main(argv: list[str] | None = None) -> int:
    # A shell starts background jobs with SIGINT ignored; netkit must still tear down on Ctrl-C/kill -INT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_terminated)  # `kill`, systemd, CI cancelling a job: tear down as for Ctrl-C
    # `kill -USR1 PID`: every thread's stack on stderr, and the run goes on -- where a stuck run waits,
    # without stopping it (the suite's README runner asks before it ends a command past its deadline).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except Terminated:
        print("\nnetkit: terminated (SIGTERM); its labs were torn down", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("\nnetkit: interrupted; the lab was torn down", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EnvironmentUnusable as exc:  # not root, no netns, a kernel feature missing (FeatureMissing): kselftest's skip
        print(f"netkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN_HERE
    except (SettingError, InputError, NotImplementedError, NotModelled) as exc:  # what was asked: no machine would run it
        print(f"netkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NetkitError as exc:
        print(f"netkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
