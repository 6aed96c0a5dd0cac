"""The `runner` command: its parser, its commands and all of their terminal text."""
