"""Block renderers: one module per block type, discovered by ``renderers.registry``."""
