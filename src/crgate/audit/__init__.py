"""``crgate audit``: is everything in a registry (or everything running) scanned recently and within policy?

Reads what the scanner already holds (``GetLast``/``List``) and never starts a scan unless asked
(``--rescan-stale``). ``run.audit`` is the entry point; ``model`` holds its plain data.
"""
