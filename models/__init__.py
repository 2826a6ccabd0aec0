"""Blanco's domain: configuration and recipient models, their Redis stores, the decision engine."""
