"""Images uploaded by agents: content checks (``sniff``) and storage in the database (``store``)."""
