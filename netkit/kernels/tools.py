"""What booting another kernel needs from the host: virtme-ng, qemu, a static busybox, depmod; and KVM or not.

KVM is tried first when ``/dev/kvm`` can be opened, software emulation (TCG)
after it; ``NETKIT_GUEST_ACCEL=kvm|tcg`` forces one.  Opening ``/dev/kvm`` is
not proof that it runs a stock kernel (a PVM backend makes qemu fail with
"failed to set MSR"), so once qemu itself has failed under KVM the rest of the
process goes straight to TCG.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Literal

from ..errors import EnvironmentUnusable

ACCEL_ENV = "NETKIT_GUEST_ACCEL"


def venv_bin() -> str:
    return os.path.dirname(sys.executable)


def depmod_path() -> str | None:
    """kmod's depmod, on PATH or where Debian puts it (root's PATH may lack /sbin); None: not installed."""
    found = shutil.which("depmod")
    return found if found else ("/sbin/depmod" if os.path.exists("/sbin/depmod") else None)


def find_tools() -> dict[str, str]:
    """virtme-ng's vng, qemu, a static busybox and depmod, or EnvironmentUnusable saying what to install."""
    missing = []
    vng = shutil.which("vng", path=f"{venv_bin()}:{os.environ.get('PATH', '')}")
    if vng is None:
        missing.append(f"virtme-ng ({venv_bin()}/pip install virtme-ng)")
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        missing.append("qemu (apt-get install qemu-system-x86)")
    busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox") if os.path.isfile(p)), None)
    if busybox is None or not is_static_elf(busybox):
        missing.append("a static busybox for the guest's initramfs and its 9p root (apt-get install busybox-static)")
    if depmod_path() is None:
        missing.append("depmod, which virtme-ng runs for the guest's modules (apt-get install kmod)")
    if missing:
        raise EnvironmentUnusable(f"running the gate in another kernel needs {'; '.join(missing)}")
    assert vng and qemu and busybox
    return {"vng": vng, "qemu": qemu, "busybox": busybox}


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP), i.e. statically linked."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only (amd64)
                return False
            order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(int.from_bytes(table[i:i + 4], order) != 3 for i in range(0, len(table), phentsize))


def kvm_usable() -> bool:
    """/dev/kvm can be opened: worth trying (it may still fail to run the kernel; see the module docstring)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


_kvm_failed: list[str] = []  # this process saw qemu itself fail under KVM: do not try it for every kernel


def note_kvm_failure(why: str) -> None:
    """qemu itself failed under KVM (not the kernel it booted): later kernels of this process go straight to TCG."""
    _kvm_failed.append(why)


def kvm_failed_earlier() -> str | None:
    """qemu's KVM failure this process saw first, if any."""
    return _kvm_failed[0] if _kvm_failed else None


def accelerations() -> list[str]:
    forced = os.environ.get(ACCEL_ENV, "").strip().lower()
    if forced in ("kvm", "tcg"):
        return [forced]
    if forced not in ("", "auto"):
        raise EnvironmentUnusable(f"{ACCEL_ENV}={forced!r}: use kvm, tcg or auto")
    return ["kvm", "tcg"] if kvm_usable() and not _kvm_failed else ["tcg"]
