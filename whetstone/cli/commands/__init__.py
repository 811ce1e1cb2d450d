"""The `whet` subcommands that are clients of the REST API, one module per area."""
