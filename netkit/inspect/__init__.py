"""``netkit inspect``: what dead-peer detection a live process's TCP sockets will actually get. Read-only, no lab.

- :mod:`.facts` -- what was read, as data (pure)
- :mod:`.assess` -- the settings' provenance and the worst-case detection times from :mod:`netkit.model` (pure)
- :mod:`.procnet` -- ``/proc/PID/net/tcp{,6}`` parsed into sock_diag's records (pure)
- :mod:`.borrow` -- ``pidfd_open`` + ``pidfd_getfd`` + ``getsockopt`` on the borrowed fd
- :mod:`.gather` -- /proc, the process's own network namespace, sock_diag and sysctls there
- text: :mod:`netkit.report.inspect`; command line: :mod:`netkit.cli.inspect`

How each value is read, and what the kernel lets us tell apart:

* ``SO_KEEPALIVE`` and ``TCP_USER_TIMEOUT`` read back exactly what the socket
  holds (``sock_flag(SOCK_KEEPOPEN)``, ``icsk_user_timeout``; 0 = not set, and
  there is no sysctl for it).
* ``TCP_KEEPIDLE``/``TCP_KEEPINTVL``/``TCP_KEEPCNT`` read back the *effective*
  value (``keepalive_time_when()`` and friends in include/net/tcp.h:
  ``tp->keepalive_time ?: net->ipv4.sysctl_tcp_keepalive_time``, the
  namespace's sysctl *at read time*).  A value that differs from the socket's
  namespace's sysctl was certainly set on the socket; one that equals it was
  either inherited or set to the same number -- the kernel does not tell
  (``tp->keepalive_time == 0`` is not visible from user space).  The
  difference matters only if the sysctl changes later: an inherited value
  follows it.
* Where a value is inherited it comes from the sysctls of **the socket's own
  network namespace** (read from a thread inside ``/proc/PID/ns/net``), not
  the host's: every new namespace starts at the kernel defaults 7200/75/9.
* ``tcp_retries2`` exists only as that namespace's sysctl (no socket option).
* Without ``CAP_SYS_PTRACE`` (``pidfd_getfd`` needs ptrace access) the options
  cannot be read; sock_diag still shows whether a *keepalive timer* runs (so
  whether SO_KEEPALIVE is on, for an established socket with nothing in
  flight), when it expires and how many probes are out -- not the configured
  values, nor TCP_USER_TIMEOUT.  Where even the process's fds and namespace
  are hidden (it holds capabilities netkit lacks), its namespace's socket
  table is still readable in ``/proc/PID/net/tcp``; its sockets are then those
  of its uid there, which may include other processes'.
"""
