"""Recipient data: profiles, scores, customer data (orders and events), the reads the open makes of
them, segmentation, and the tombstones that keep erased ids out."""
