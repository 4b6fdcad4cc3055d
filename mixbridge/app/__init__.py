"""mixbridge.app: the application layer on top of every package: automix, render, master and the CLI."""
