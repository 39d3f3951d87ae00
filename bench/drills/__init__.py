"""Reliability drills (``python -m bench.drills``): the service killed, the provider failing,
PostgreSQL restarted -- and what was lost or sent twice."""
