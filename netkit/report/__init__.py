"""Reports: results written for people (:mod:`.text`, :mod:`.check`) and machines (:mod:`.json`). No measuring here."""
