"""The gate document as typed data (:mod:`.records`) and its JSON (:mod:`.codec`, the one loader and dumper).

Pure, and apart from :mod:`netkit.gate`: the gate writes documents, the
reports (:mod:`netkit.report`) and ``gate diff`` read them, and neither
direction imports the machinery that runs scenarios.
"""
