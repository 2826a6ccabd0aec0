"""Campaign configuration: campaigns, blocks and variants, the condition language, experiments,
live data sources, and their stores."""
