"""Conversions: what a click or an open led to, attributed to the email that earned it."""
