"""The chat layer: commands, permissions, platform adapters, the CLI and app wiring."""
