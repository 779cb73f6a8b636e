"""Other kernels: fetch Debian's kernels into a cache and run netkit's gate inside them (virtme-ng).

A kernel is named by a *spec* (``netkit kernels get SPEC``, ``netkit gate --kernel SPEC``):

``debian:SERIES``
    the newest Debian amd64 kernel of a series, from the suites netkit knows
    (bookworm, bookworm-security, bookworm-backports, trixie, trixie-security,
    trixie-backports): ``debian:6.1``, ``debian:6.12``, ``debian:7.3``;
    ``debian:7.x`` (or ``debian:7``) is the newest 7.anything.  Among equal
    versions the Debian 12 (bookworm) build is taken.
``bookworm-SERIES``, ``trixie-SERIES``
    the same, restricted to that Debian release's builds (``+deb12`` or
    ``+deb13``; the suite's ``-security``/``-backports`` names are accepted
    too): ``bookworm-6.1``, ``trixie-6.12``, ``trixie-backports-7.x``.
``linux-image-RELEASE`` or ``RELEASE``
    one exact build: ``linux-image-6.1.0-56-amd64``, ``7.3.4+deb13-amd64``.
``build:SERIES-hzHZ``
    a kernel ``scripts/build-kernel`` built into the cache (``build:6.12-hz1000``).
a path
    a kernel image file (``/boot/vmlinuz-6.1.0-56-amd64``, ``arch/x86/boot/bzImage``).
``host``
    the running kernel (``--kernel host``: the gate runs here, no virtual machine).

Only the generic amd64 flavour is fetched: Debian's cloud kernels have no 9p,
which virtme-ng needs to share the host's root with the guest.
"""
