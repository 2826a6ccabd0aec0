"""The ``blanco`` command (``main``) and its subcommands, one module each."""
