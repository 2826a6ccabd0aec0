"""Blanco's benchmarks: ``python -m benchmarks`` (or ``make bench``), ``--http`` for gunicorn.

Every figure is printed next to a baseline measured in the same run, because the targets in
DESIGN.md ("Performance") are ratios. Nothing here is a test: targets print PASS or MISS and the
run always exits 0.
"""
