"""The timer ledger: what the kernel's tracepoints say the tested socket's timers did, and how late each ran.

A run's tracefs instance (:mod:`netkit.lab.tracefs`) records, for the tested
socket's timers only (their addresses, learned from the armings netkit's own
``setsockopt``/``send`` made), every arming (``timer:timer_start``: the
requested expiry and the wheel's bucket, in jiffies, and the jiffy it was
armed at), every run (``timer:timer_expire_entry``: the jiffy it ran at,
``timer_expire_exit``: its end) and, inside a run, the socket's death
(``sock:inet_sock_set_state`` to TCP_CLOSE, then ``sock:inet_sk_error_report``
with the error).  This module reads that text and keeps the facts; it does
no I/O.

Which events are ours, without guessing: timer events carry the timer's
address; a socket's death is the CLOSE transition that happens *inside a run
of its own timer*, on the CPU running it, between that run's entry and exit
(the timer softirq runs one handler at a time per CPU).  Many labs share the
same addresses and ports, so a 4-tuple alone would take another lab's death.

The machine's lateness, apart from the rule: a run is due at the start of its
bucket's jiffy.  ``jiffy 0`` on the monotonic clock is estimated from every
event that reads jiffies (an event at jiffy ``J`` happens at or after the
start of ``J``): the earliest ``t - J * tick`` over the ledger.  A run's
lateness is its moment minus its bucket's start: whole jiffies when the
softirq ran at a later tick, and the part of a jiffy it waited within its
tick.  What of it carries into later runs is
:func:`netkit.evidence.ledger_check.carried`'s.

The trace's clock is CLOCK_MONOTONIC, the clock of TCP's own timestamps
(``tcp_clock_cache``): the ledger keeps t = 0 on it (``zero_ns``) and the
moments of netkit's own ``trace_marker`` lines, so that a rule counted in
the TCP clock's milliseconds (the RTO's user-timeout clamp) can be read
from the moments around each stamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..model.wheel import LVL_SIZE, bucket_at_level

_LINE = re.compile(r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?P<flags>\S+)\s+"
                   r"(?P<secs>\d+)\.(?P<usecs>\d+):\s+(?P<event>\w+):\s+(?P<rest>.*)$")
_FIELD = re.compile(r"(\w+)=(\S*)")
TCP_CLOSE = "TCP_CLOSE"
KEEPALIVE_TIMER = "tcp_keepalive_timer"
WRITE_TIMER = "tcp_write_timer"  # retransmissions and zero-window probes (ICSK_TIME_RETRANS, ICSK_TIME_PROBE0)


class LedgerUnreadable(ValueError):
    """The trace cannot be read as a ledger on this kernel (a field it does not print); the message says which."""


@dataclass(frozen=True)
class TraceLine:
    """One line of a tracefs ``trace`` file: who, where, when (ns on the instance's clock), what."""

    pid: int
    cpu: int
    t_ns: int
    event: str
    fields: dict[str, str]
    in_interrupt: bool = False  # the latency flags say hard or soft irq: the pid is whoever was interrupted
    raw: str = ""  # what follows the event's name (a marker's text)


def parse(text: str) -> list[TraceLine]:
    """The event lines of a ``trace`` file (comments and lost-event notes skipped), oldest first."""
    lines: list[TraceLine] = []
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if m is None:
            if "LOST" in raw and "EVENTS" in raw:  # "CPU:1 [LOST 12 EVENTS]": the buffer overflowed
                lines.append(TraceLine(0, 0, lines[-1].t_ns if lines else 0, "lost", {}))
            continue
        usecs = m.group("usecs").ljust(9, "0")[:9]  # "us" resolution prints 6 digits; ns clocks print 9
        flags = m.group("flags")  # e.g. "dNs3.": irqs-off, need-resched, hardirq/softirq ("h", "s", "H"), depth
        lines.append(TraceLine(int(m.group("pid")), int(m.group("cpu")), int(m.group("secs")) * 10**9 + int(usecs),
                               m.group("event"), dict(_FIELD.findall(m.group("rest"))),
                               len(flags) > 2 and flags[2] in "hsHzZ", m.group("rest")))
    return lines


@dataclass(frozen=True)
class Arming:
    """A timer armed: at jiffy ``now``, to expire at ``expires``, queued in the bucket that runs at ``bucket``."""

    t_s: float  # on the run's axis (s since the run's t = 0)
    function: str
    now: int
    expires: int
    bucket: int
    by_run: bool  # armed by its own run (the handler's re-arm), not by a system call or another path
    run_late: int | None = None  # by_run: whole jiffies that run ran after its bucket (the base's clock can trail)

    @property
    def delay(self) -> int:
        """The requested delay in jiffies (the event's ``timeout``)."""
        return self.expires - self.now


@dataclass(frozen=True)
class TimerRun:
    """A run of the timer: the jiffy it ran at, the arming it answered, how late it was."""

    t_s: float
    function: str
    now: int
    arming: Arming | None  # the arming this run fired (None: armed before the ledger began)
    late_s: float | None  # its moment minus its bucket's start (None without the arming)

    @property
    def late_jiffies(self) -> int | None:
        """Whole jiffies past the bucket: these carry into the next arming (which counts from ``now``)."""
        return None if self.arming is None else self.now - self.arming.bucket


@dataclass(frozen=True)
class KernelDeath:
    """The socket's death as the kernel reported it: the CLOSE transition in a run of its timer, and the error."""

    t_s: float
    error: int | None  # errno of inet_sk_error_report (110 = ETIMEDOUT); None if none followed in that run
    function: str  # the timer whose run killed it


@dataclass(frozen=True)
class Ledger:
    """Everything the tracepoints said of the tested socket's timers, on the run's axis (seconds since t = 0)."""

    hz: int
    armings: tuple[Arming, ...]
    runs: tuple[TimerRun, ...]
    death: KernelDeath | None
    lost: bool = False  # the instance's buffer overflowed: some events are missing
    zero_jiffy: int | None = None  # the jiffy t = 0 fell in (from the ledger's own jiffy clock)
    moved_s: float = 0.0  # how much later t = 0 is than the run's own (moved to the kernel's moment of a send)
    zero_ns: int | None = None  # t = 0 on the trace's clock (CLOCK_MONOTONIC, the TCP clock's): whole ms of it
    marks_s: tuple[float, ...] = ()  # netkit's own trace_marker lines (each written just before a learning call)

    def mono_ns(self, t_s: float) -> int | None:
        """A moment of the run's axis on the trace's clock (ns), which is the clock of ``tcp_clock_cache``."""
        return None if self.zero_ns is None else self.zero_ns + round(t_s * 10**9)

    def run_at(self, t_s: float, slack_s: float = 0.002) -> int | None:
        """The index of the run during which something happened at ``t_s`` (a frame it sent), if any began just before."""
        found = None
        for i, run in enumerate(self.runs):
            if run.t_s <= t_s + 1e-6 and t_s - run.t_s <= slack_s:
                found = i
        return found

    def moved(self, by_s: float) -> Ledger:
        """The same ledger on an axis whose t = 0 is ``by_s`` later (every moment minus ``by_s``)."""
        def at(t: float) -> float:
            return round(t - by_s, 6)

        armings = {a: replace(a, t_s=at(a.t_s)) for a in self.armings}
        runs = tuple(replace(r, t_s=at(r.t_s), arming=None if r.arming is None else armings[r.arming])
                     for r in self.runs)
        death = None if self.death is None else replace(self.death, t_s=at(self.death.t_s))
        return replace(self, armings=tuple(armings.values()), runs=runs, death=death,
                       moved_s=round(self.moved_s + by_s, 6),
                       zero_ns=None if self.zero_ns is None else self.zero_ns + round(by_s * 10**9),
                       marks_s=tuple(at(t) for t in self.marks_s))

    def moved_to_first_call(self, function: str) -> Ledger:
        """The ledger with t = 0 at the kernel's moment of the call that armed ``function`` at or after t = 0.

        Where no frame of the call reached the tap (a send or a connect into a
        link that is down), t = 0 was this process's clock read just before the
        call; the arming the call made is the kernel's own moment of it.  An
        arming of the same timer before t = 0 (the handshake's ACK processed in
        a system call, say: a CI run had one) is the connection's past.
        """
        call = next((a for a in self.armings if a.function == function and not a.by_run and a.t_s >= 0), None)
        return self.moved(call.t_s) if call is not None and call.t_s > 0 else self

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable ledger (in a result's and a gate run's JSON); :meth:`from_dict` reads it back."""
        return {
            "hz": self.hz, "lost": self.lost, "zero_jiffy": self.zero_jiffy, "moved_s": self.moved_s,
            "zero_ns": self.zero_ns, "marks_s": list(self.marks_s),
            "armings": [{"t_s": a.t_s, "function": a.function, "now": a.now, "expires": a.expires,
                         "delay": a.delay, "bucket": a.bucket, "by_run": a.by_run, "run_late": a.run_late}
                        for a in self.armings],
            "runs": [{"t_s": r.t_s, "function": r.function, "now": r.now,
                      "bucket": None if r.arming is None else r.arming.bucket, "late_s": r.late_s,
                      "arming": None if r.arming is None else self.armings.index(r.arming)} for r in self.runs],
            "death": None if self.death is None else {"t_s": self.death.t_s, "error": self.death.error,
                                                      "function": self.death.function},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ledger:
        armings = tuple(Arming(a["t_s"], a["function"], a["now"], a["expires"], a["bucket"], a["by_run"],
                               a.get("run_late")) for a in data["armings"])
        runs = tuple(TimerRun(r["t_s"], r["function"], r["now"],
                              None if r.get("arming") is None else armings[r["arming"]], r["late_s"])
                     for r in data["runs"])
        d = data.get("death")
        death = None if d is None else KernelDeath(d["t_s"], d["error"], d["function"])
        return cls(data["hz"], armings, runs, death, bool(data.get("lost")), data.get("zero_jiffy"),
                   float(data.get("moved_s", 0.0)), data.get("zero_ns"), tuple(data.get("marks_s", ())))


def build(lines: Sequence[TraceLine], timers: Iterable[str], hz: int, zero_ns: int,
          owned_from: Mapping[str, int] | None = None, marker_pid: int | None = None,
          alive_at_ns: int | None = None) -> Ledger:
    """The ledger of the timers at ``timers`` (addresses as printed), on the axis whose t = 0 is ``zero_ns``.

    ``owned_from``: address -> the moment (ns) from which that address is
    certainly the tested socket's (the start of the call it was learned
    in).  Before it, the memory may have been another socket's, freed just
    before ours was made there: the trace of a whole process tree once gave
    a run a death 0.5 s before its own socket armed its keepalive timer,
    another lab's death at the same address (error 101).

    ``marker_pid``: the thread whose ``trace_marker`` lines the ledger keeps
    (the run's own; every run of a pool writes into the same trace).

    ``alive_at_ns``: a moment the tested socket certainly lived (a program's
    socket received a segment then): no CLOSE before it is its death.  For a
    program's socket, armed by no call of netkit's, that is the bound there
    is: its own setsockopt armings may come before any segment it receives.

    The other end of ownership: once the death's run has ended, the socket is
    freed and its memory may be the next socket's at once.  pgbouncer, its
    server connection killed, connects again at once: the new socket, at the
    same address, armed its keepalive timer 46 ms after the death, and its
    runs read as a fourth re-arm "after a probe".  Nothing of ours after the
    death is kept.
    """
    ours = {_address(t) for t in timers}
    since = {_address(t): ns for t, ns in (owned_from or {}).items()}
    tick_ns = 10**9 // hz
    epoch = _jiffy_epoch(lines, tick_ns)

    def axis(t_ns: int) -> float:
        return round((t_ns - zero_ns) / 1e9, 6)

    armings: list[Arming] = []
    runs: list[TimerRun] = []
    open_runs: dict[int, tuple[str, str, int, int]] = {}  # cpu -> (timer, function, index, pid) of the run there
    last_arming: dict[str, Arming] = {}  # each timer's latest arming, until a run fires it
    death: KernelDeath | None = None  # the CLOSE inside one of our runs ...
    death_run = -1
    confirmed: KernelDeath | None = None  # ... kept once that run's exit is seen (the run really held it)
    lost = False
    marks: list[float] = []
    for line in lines:
        f = line.fields
        timer = _address(f.get("timer", ""))
        if timer in ours and (line.t_ns < since.get(timer, 0) or confirmed is not None):
            continue  # the address before the tested socket certainly had it, or after it died
        if line.event == "timer_start" and timer in ours:
            in_run = open_runs.get(line.cpu, ("", "", 0, 0))[0] == timer
            expires = int(f["expires"])
            now = expires - int(f.get("timeout", "0").strip("[]")) if "now" not in f else int(f["now"])
            run_late = runs[open_runs[line.cpu][2]].late_jiffies if in_run else None
            arming = Arming(axis(line.t_ns), f["function"], now, expires, _bucket(f, expires), in_run, run_late)
            armings.append(arming)
            last_arming[timer] = arming
        elif line.event == "timer_expire_entry" and timer in ours:
            open_runs[line.cpu] = (timer, f["function"], len(runs), line.pid)  # a new run on a CPU ends the last
            fired = last_arming.pop(timer, None)  # an arming fires once: a second run without one is unexplained
            late = None if fired is None or epoch is None else (line.t_ns - epoch - fired.bucket * tick_ns) / 1e9
            runs.append(TimerRun(axis(line.t_ns), f["function"], int(f["now"]), fired,
                                 None if late is None else round(late, 6)))
        elif line.event == "timer_expire_entry":
            open_runs.pop(line.cpu, None)  # another timer's run on this CPU: ours there has ended
        elif line.event == "timer_expire_exit" and open_runs.get(line.cpu, ("", "", 0, 0))[0] == timer:
            run_index = open_runs.pop(line.cpu)[2]
            if death is not None and death_run == run_index:
                confirmed = death
        elif line.event == "inet_sock_set_state" and _in_run(open_runs, line) and death is None \
                and line.t_ns > (alive_at_ns or 0):
            if f.get("newstate") == TCP_CLOSE and f.get("oldstate") != "TCP_LISTEN":
                death = KernelDeath(axis(line.t_ns), None, open_runs[line.cpu][1])
                death_run = open_runs[line.cpu][2]
        elif line.event == "inet_sk_error_report" and _in_run(open_runs, line) and death is not None \
                and death.error is None and open_runs[line.cpu][2] == death_run:
            death = KernelDeath(death.t_s, int(f.get("error", "0")), death.function)
        elif line.event == "lost":
            lost = True
        elif line.event == "tracing_mark_write" and marker_pid in (None, line.pid):
            marks.append(axis(line.t_ns))
    if confirmed is not None and death is not None and death.t_s == confirmed.t_s:
        confirmed = death  # with the error report that followed in the same run
    zero_jiffy = None if epoch is None else (zero_ns - epoch) // tick_ns
    return Ledger(hz, tuple(armings), tuple(runs), confirmed, lost, zero_jiffy, zero_ns=zero_ns, marks_s=tuple(marks))


def _bucket(fields: Mapping[str, str], expires: int) -> int:
    """The wheel's bucket of an arming: printed (``bucket_expiry``, Linux 6.2 on), or from the wheel index it was put in.

    Before 6.2 ``timer:timer_start`` prints no ``bucket_expiry``, but it
    prints ``idx`` (``flags >> TIMER_ARRAYSHIFT``, set by ``enqueue_timer``
    just before the event): the level is ``idx / LVL_SIZE``, and
    ``calc_index`` (kernel/time/timer.c) gives the bucket from the expiry and
    the level, ``((expires >> LVL_SHIFT(lvl)) + 1) << LVL_SHIFT(lvl)``, for an
    expiry ahead of the base's clock (every TCP timer: armed for jiffies + a
    delay of at least 1).
    """
    if "bucket_expiry" in fields:
        return int(fields["bucket_expiry"])
    if "idx" in fields:
        return bucket_at_level(expires, int(fields["idx"]) // LVL_SIZE)
    raise LedgerUnreadable("this kernel's timer:timer_start prints neither bucket_expiry nor idx: the wheel's "
                           "rounding cannot be read from the trace")


def _in_run(open_runs: dict[int, tuple[str, str, int, int]], line: TraceLine) -> bool:
    """Did ``line`` happen inside one of our runs: on its CPU, in the same task (a preemptible softirq thread, as on
    PREEMPT_RT, could let another task run there between the run's entry and exit)."""
    run = open_runs.get(line.cpu)
    return run is not None and run[3] == line.pid


def _jiffy_epoch(lines: Sequence[TraceLine], tick_ns: int) -> int | None:
    """The monotonic moment of jiffy 0: the earliest ``t - now * tick`` over every timer run the trace holds.

    A run's entry is recorded after the tick that made ``now`` the jiffy, so
    each gives an upper bound; the trace holds every lab's TCP timer runs,
    and the earliest of them is within microseconds of the tick.  (An
    arming's ``now`` is read after its timestamp is taken: at the end of a
    jiffy it can pair with the next one, so armings are not used.)
    """
    return min((line.t_ns - int(line.fields["now"]) * tick_ns for line in lines
                if line.event == "timer_expire_entry" and "now" in line.fields), default=None)


def marked_pid(lines: Sequence[TraceLine], token: str) -> int | None:
    """The pid of the thread that wrote ``token`` to ``trace_marker``: that thread's id as the trace records it.

    The trace records pids of the initial pid namespace; a process in a
    container (systemd-nspawn) knows only its own, so it learns its
    trace pid from a marker it writes itself.
    """
    return next((line.pid for line in lines if line.event == "tracing_mark_write" and token in line.raw), None)


def learned_timer(lines: Sequence[TraceLine], pid: int, function: str, after_ns: int, before_ns: int) -> str | None:
    """The address of the one ``function`` timer that ``pid`` armed between two moments (its own system call).

    Only armings in process context count: a softirq that ran on the way
    out of the call (another lab's timer, say) carries the interrupted
    thread's pid.  None when there is not exactly one: a guess between two
    would tie the ledger to the wrong socket.
    """
    found = {line.fields.get("timer", "") for line in lines
             if line.event == "timer_start" and line.pid == pid and line.fields.get("function") == function
             and not line.in_interrupt and after_ns <= line.t_ns <= before_ns}
    return found.pop() if len(found) == 1 else None


def socket_moments(lines: Sequence[TraceLine], cookie: int) -> tuple[str | None, list[int]]:
    """The kernel address of the socket whose cookie is ``cookie``, and the moments it received a segment (ns).

    ``tcp:tcp_probe`` (every segment an established socket receives) prints
    the socket's cookie (``sock_gen_cookie``, which sock_diag and
    ``SO_COOKIE`` report too) beside its address.  The address is None
    unless exactly one was printed for that cookie.
    """
    seen = [line for line in lines if line.event == "tcp_probe" and _cookie(line.fields.get("sock_cookie")) == cookie]
    addresses = {_address(line.fields.get("skaddr", "")) for line in seen}
    return (addresses.pop() if len(addresses) == 1 else None), [line.t_ns for line in seen]


def _address(text: str) -> str:
    """A kernel address as one spelling: the trace prints ``0xffff...`` in some events and ``ffff...`` in others."""
    return text.lower().removeprefix("0x")


def _cookie(text: str | None) -> int | None:
    try:
        return None if text is None else int(text, 16)
    except ValueError:
        return None


def timer_in(socket_address: str, reference: tuple[str, str]) -> str:
    """A socket's timer from its address: at the offset the ``reference`` (a socket's address, its same timer's) shows.

    The timers are fields of ``struct sock`` (``sk_timer``) and ``struct
    inet_connection_sock`` (``icsk_retransmit_timer``), at the same offset in
    every TCP socket of a kernel, IPv4 or IPv6 (``tcp6_sock`` begins with
    ``tcp_sock``): a socket netkit armed itself gives it.
    """
    base, timer = (int(a, 16) for a in reference)
    return f"{int(socket_address, 16) + timer - base:016x}"


__all__ = ["KEEPALIVE_TIMER", "WRITE_TIMER", "Arming", "KernelDeath", "Ledger", "LedgerUnreadable", "TimerRun",
           "TraceLine", "build", "learned_timer", "marked_pid", "parse", "socket_moments", "timer_in"]
