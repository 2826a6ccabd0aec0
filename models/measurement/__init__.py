"""Counting opens, clicks and views: the event streams, the counters and unique counts, and
reports."""
