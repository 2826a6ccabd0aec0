"""Blanco's benchmarks: ``python -m benchmarks`` (or ``make bench``); ``--http-only`` for the
comparison with a bare Flask app through gunicorn and wrk, ``--no-http`` to leave gunicorn out.

Every figure is printed next to a baseline measured in the same run, because the targets in
docs/design.md ("Performance targets") are ratios. Nothing here is a test: targets print PASS or
MISS and the run always exits 0.
"""
