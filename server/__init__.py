"""Blanco's web layer: the app factory, configuration, routes and the open-time path."""

from server.app import create_app

__all__ = ["create_app"]
