"""Dataset formats, validation and splitting."""
