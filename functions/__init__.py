"""Lambda entry points: each parses its event and calls one service."""
