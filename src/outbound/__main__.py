"""``python -m outbound`` runs the command line."""

from outbound.cli.main import app

app()
