"""The demo: its data (a campaign, a newsletter, six recipients), the ``/demo`` page, and the
session file that lets other commands find a running demo."""
