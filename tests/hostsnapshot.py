"""What the host's network looks like, read-only: for the tests that prove netkit leaves it alone.

"The host" is the network namespace the test process runs in (the initial one on
a normal machine), which is where netkit's CLI, library and workers start. Every
function here only reads: ``ip -j ... show``, ``tc -j qdisc show``, ``nft -j list
ruleset``, ``iptables-save``, /proc/sys/net, and the top-level tracing state of tracefs. Values the kernel changes on its own
are left out or normalized, each with its reason next to it, so two snapshots
differ only when something changed the configuration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from netkit.lab import tracefs

FOREVER = 0xFFFFFFFF  # an address lifetime that does not count down
SYSCTL_ROOT = "/proc/sys/net"
VOLATILE_SYSCTLS = {
    "/proc/sys/net/netfilter/nf_conntrack_count",  # a gauge of the host's live connections, not a setting
}
# The top-level tracing state netkit must never change (its runs trace in private instances, netkit.lab.tracefs):
# these files, every file of options/, and the enable switches (and netkit's events' filters) of the event groups
# netkit records.  A file this kernel lacks (set_ftrace_filter without dynamic ftrace) is left out.
TRACING_FILES = ("tracing_on", "current_tracer", "set_event", "trace_clock", "trace_options", "buffer_size_kb",
                 "set_event_pid", "set_event_notrace_pid", "set_ftrace_filter", "set_ftrace_pid", "tracing_cpumask",
                 "events/enable")
OTHER_INSTANCES = "instances (not netkit's)"  # tracing_state's entry: the instances that are not netkit's, by name
TRACED_GROUPS = sorted({event.split("/")[0] for event in tracefs.EVENTS})  # timer, sock
NETKIT_INSTANCE = re.compile(r"^nk-\d+-")  # a run's own instance, nk-<pid>-...: live ones come and go, netkit cleanup
                                         # removes dead ones; tests/test_cleanup_tracefs.py proves that apart



def ip(*args: str) -> list:
    """``ip -j ARGS`` as parsed JSON (an empty list when ip prints nothing, as ``netns list-id`` may)."""
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def _addresses() -> list:
    """Addresses per link; a finite lifetime counts down by itself (SLAAC, DHCP), so only "finite" is kept of it."""
    links = ip("addr", "show")
    for link in links:
        for addr in link.get("addr_info", []):
            for key in ("valid_life_time", "preferred_life_time"):
                if key in addr and addr[key] != FOREVER:
                    addr[key] = "finite"
    return links


def _routes(family: str) -> list:
    """Routes of every table; the remaining lifetime of a learned route ("expires") counts down by itself."""
    routes = ip(family, "route", "show", "table", "all")
    for route in routes:
        route.pop("expires", None)
    return routes


def host_network_state():
    """Links, addresses and routes of the host namespace, as the kernel reports them."""
    links = [{k: link.get(k) for k in ("ifindex", "ifname", "flags", "mtu", "address")} for link in ip("link", "show")]
    return links, _addresses(), _routes("-4"), _routes("-6")


def static_neighbours() -> list:
    """PERMANENT neighbour entries (``ip neigh add``) and proxy entries: configuration.

    Every other entry is the kernel's own cache, left out because it changes by
    itself whatever netkit does: dynamic ones (REACHABLE, STALE, DELAY, PROBE,
    FAILED, INCOMPLETE) age and are refreshed with the host's traffic, and NOARP
    ones are made on the first packet to a multicast, broadcast or loopback
    destination (here ``ff02::1:ff00:1 dev eth0``, when the host resolves its
    gateway) and garbage-collected once idle.
    """
    return ip("neigh", "show", "nud", "permanent") + ip("neigh", "show", "proxy")


def _tool(argv: list[str], clean=None):
    """A listing tool's output (``clean``-ed), or None when the tool is not installed, or its failure as text."""
    if not shutil.which(argv[0]):
        return None
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip()}"
    return clean(done.stdout) if clean else done.stdout


def _iptables_rules(text: str) -> list[str]:
    """iptables-save's lines without its comments (a timestamp) and without the chains' packet/byte counters."""
    return [re.sub(r"\[\d+:\d+\]", "[]", line) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def sysctls(root: str = SYSCTL_ROOT) -> dict[str, str]:
    """Every sysctl under ``root`` (all of net.*: ipv4 with its tcp_*, ipv6, core, ...) read in this thread's namespace.

    Read here, in the host: netkit writes its sysctls from threads inside the lab
    namespaces, and a sysctl that is global rather than per-namespace would show
    the write here. A file that cannot be read (write-only ``flush``, unset
    ``stable_secret``) is recorded with its errno, which compares just as well.
    """
    values = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if path in VOLATILE_SYSCTLS:
                continue
            try:
                with open(path) as f:
                    values[path] = f.read().strip()
            except OSError as exc:
                values[path] = f"<unreadable: {exc.strerror}>"
    return dict(sorted(values.items()))


def tracefs_mount() -> str | None:
    """Where this process can reach tracefs (a mount point whose device is the tracefs it lists), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if " - tracefs " not in line:
                continue
            major, minor = (int(n) for n in fields[2].split(":"))
            try:
                if os.stat(fields[4]).st_dev == os.makedev(major, minor):
                    return fields[4]
            except OSError:
                continue
    return None


TESTS_OWN_INSTANCE = "nktest-"  # "foreign" instances the cleanup tests make: another session's come and go meanwhile


def tracing_files(root: str) -> list[str]:
    """The top-level tracing files compared, relative to ``root``: TRACING_FILES, options/*, the groups' switches."""
    def listed(directory: str) -> list[str]:
        try:
            return sorted(os.listdir(os.path.join(root, directory)))
        except OSError:
            return []

    names = [*TRACING_FILES, *(f"options/{option}" for option in listed("options"))]
    for group in TRACED_GROUPS:
        names.append(f"events/{group}/enable")
        names += [f"events/{group}/{event}/enable" for event in listed(f"events/{group}")
                  if os.path.isdir(os.path.join(root, "events", group, event))]
    names += [f"events/{event}/filter" for event in tracefs.EVENTS]
    return names


def tracing_state() -> dict[str, str] | None:
    """The top-level tracing files (:func:`tracing_files`, byte for byte) and the instances that are not netkit's.

    None without tracefs.

    Read, never mounted here: the test mounts tracefs before its first
    snapshot (netkit may mount it, which changes no tracing state).
    """
    root = tracefs_mount()
    if root is None:
        return None
    state = {}
    for name in tracing_files(root):
        try:
            with open(os.path.join(root, name), "rb") as f:
                state[name] = f.read().decode(errors="backslashreplace")
        except FileNotFoundError:
            continue
        except OSError as exc:  # e.g. set_ftrace_filter under lockdown (EPERM): the same refusal compares equal
            state[name] = f"<unreadable: {exc.strerror}>"
    others = sorted(n for n in os.listdir(os.path.join(root, "instances"))
                    if not NETKIT_INSTANCE.match(n) and not n.startswith(TESTS_OWN_INSTANCE))
    state[OTHER_INSTANCES] = " ".join(others)
    return state


def host_snapshot() -> dict[str, object]:
    """Everything about the host's network that netkit must not change, one section per source."""
    links, addresses, routes4, routes6 = host_network_state()
    return {
        "links (ip link)": links,
        "addresses (ip addr)": addresses,
        "IPv4 routes, every table (ip -4 route show table all)": routes4,
        "IPv6 routes, every table (ip -6 route show table all)": routes6,
        "IPv4 rules (ip -4 rule)": ip("-4", "rule", "show"),
        "IPv6 rules (ip -6 rule)": ip("-6", "rule", "show"),
        "static neighbours (ip neigh, PERMANENT and proxy)": static_neighbours(),
        "peer namespace ids (ip netns list-id)": ip("netns", "list-id"),
        "qdiscs (tc qdisc)": _tool(["tc", "-j", "qdisc", "show"], json.loads),
        "nftables ruleset (nft -j list ruleset)": _tool(["nft", "-j", "list", "ruleset"], json.loads),
        "iptables-save": _tool(["iptables-save"], _iptables_rules),
        "ip6tables-save": _tool(["ip6tables-save"], _iptables_rules),
        "sysctls (/proc/sys/net)": sysctls(),
        "top-level tracing state (tracefs)": tracing_state(),
    }


def _items(value) -> list[str]:
    return [json.dumps(item, sort_keys=True) for item in (value if isinstance(value, list) else [value])]


def differences(before: dict[str, object], after: dict[str, object]) -> list[str]:
    """One readable line per changed entry: section, then what went away (-) and what appeared (+)."""
    lines = []
    for section in before.keys() | after.keys():
        old, new = before.get(section), after.get(section)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(old.keys() | new.keys()):
                if old.get(key) != new.get(key):
                    lines.append(f"{section}: {key}: {old.get(key, '<absent>')!r} -> {new.get(key, '<absent>')!r}")
            continue
        old_items, new_items = _items(old), _items(new)
        changed = [f"{section}: - {item}" for item in old_items if item not in new_items]
        changed += [f"{section}: + {item}" for item in new_items if item not in old_items]
        lines += changed or [f"{section}: the same entries in another order (or repeated): {old!r} -> {new!r}"]
    return sorted(lines)
