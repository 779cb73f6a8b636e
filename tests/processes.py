"""Process helpers for tests that must prove nothing outlived a run."""

import os


def process_group(pgid):
    """Pids in process group ``pgid`` (from /proc: a minimal Debian has no pgrep)."""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, pgrp, ...
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(pid))
    return members
