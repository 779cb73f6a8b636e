"""Audits of real programs in a lab: ``check-server`` and ``check-client``, composed of reusable pieces.

- :mod:`.program` -- start a program in a lab namespace; wait until it listens; time its exit; stop it (only what we started)
- :mod:`.follow` -- follow one socket through sock_diag (one poll helper)
- :mod:`.infer` -- keepalive settings read off the socket's timers (pure)
- :mod:`.options` -- a program's socket options read off its socket, and where each value comes from
- :mod:`.verdict` -- the death against the model's window and the expectation; how a client found out (pure)
- :mod:`.result` -- the audits' result records
- :mod:`.server` -- ``check-server``: does a server drop a dead client in time?
- :mod:`.client` -- ``check-client``: how, and when, does a client notice a dead server?
"""
