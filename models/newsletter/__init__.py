"""The blank daily newsletter: its definition, the content feed, slot ranking, sends and the daily
audience export."""
