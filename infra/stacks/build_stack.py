"""Trainer image repository, its CodeBuild project and the role that uploads its source."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.constants import BUILD_SOURCE_KEY
from infra.constructs.build_source import BuildSourceRole
from infra.constructs.trainer_image_build import TrainerImageBuild
from infra.constructs.trainer_repository import TrainerRepository


class BuildStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.trainer_repository = TrainerRepository(self, "TrainerRepository")
        self.image_build = TrainerImageBuild(
            self,
            "TrainerImageBuild",
            repository=self.trainer_repository.repository,
            source_key=BUILD_SOURCE_KEY,
        )
        self.source_role = BuildSourceRole(self, "BuildSource")
