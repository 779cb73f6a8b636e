"""``netkit gate``: the regression gate for kernel behaviour.

:mod:`.matrix` (the built-in cells, as data) and :mod:`.matrix_file` (a
user's TOML) say what to run; :mod:`.run` runs it all at once with
deadlines; :mod:`.outcome` decides each scenario's one outcome;
:mod:`.document` makes the document every report (:mod:`netkit.report`) renders,
typed in :mod:`netkit.document` (its records, and its JSON read and written in one place);
:mod:`.diff` compares two documents; :mod:`.shard` splits a gate into parts
for several machines and :mod:`.merge` joins their documents; :mod:`.summary` and :mod:`.progress`
speak to a person; :mod:`.command` is the CLI.
"""
