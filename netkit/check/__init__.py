"""Audits of real programs in a lab: the reusable pieces and ``check-server``, their first composition.

- :mod:`.program` -- start a program in a lab namespace; wait until it listens; stop it (only what we started)
- :mod:`.follow` -- follow one socket through sock_diag (one poll helper)
- :mod:`.infer` -- keepalive settings read off the socket's timers (pure)
- :mod:`.verdict` -- the death against the model's window and the expectation (pure)
- :mod:`.result` -- the audit's result record
- :mod:`.server` -- ``check-server``: the composition
"""
