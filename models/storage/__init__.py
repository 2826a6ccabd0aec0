"""Talking to Redis: clients from one URL (single, Cluster, Sentinel), batches routed by node,
scans over every primary."""
