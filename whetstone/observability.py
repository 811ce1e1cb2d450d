"""The one Logger every process shares."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="whetstone")
