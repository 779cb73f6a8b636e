"""Reports: the result record written for people (:mod:`.text`) and machines (:mod:`.json`). No measuring here."""
