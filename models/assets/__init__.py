"""Uploaded images (validated on upload, named by their hash) and the render cache."""
