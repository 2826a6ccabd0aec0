"""Bulk ingest: JSON Lines and CSV bodies read row by row, each bad row reported by line."""
