"""API Gateway REST proxy → the Whetstone API router."""

from whetstone.api.app import handler

__all__ = ["handler"]
