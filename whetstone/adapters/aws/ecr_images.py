"""ImageBuilder on ECR and CodeBuild: trainer images by content-addressed tag.

`find` asks ECR for the tag and answers the image pinned by digest. `build`
starts the CodeBuild project with the tag and waits for it; the state machine
does not call it (it runs `codebuild:startBuild.sync` itself, see
state_machine/workflow.asl.json), but `whet` tooling and tests may.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_codebuild.client import CodeBuildClient
    from mypy_boto3_ecr.client import ECRClient

BUILD_POLL_S = 15.0


def build_request(project: str, tag: str, job_id: str | None = None) -> dict[str, Any]:
    """StartBuild arguments: the tag (and the job, for the build log) as variables."""
    variables = [{"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"}]
    if job_id is not None:
        variables.append({"name": "WHETSTONE_JOB_ID", "value": job_id, "type": "PLAINTEXT"})
    return {"projectName": project, "environmentVariablesOverride": variables}


class EcrImages:
    def __init__(
        self,
        repository_uri: str,
        *,
        project: str,
        ecr: ECRClient | None = None,
        codebuild: CodeBuildClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import boto3

        self.repository_uri = repository_uri
        self.repository_name = repository_uri.split("/", 1)[-1]
        self._project = project
        self._ecr = ecr or boto3.client("ecr")
        self._codebuild = codebuild
        self._sleep = sleep

    def find(self, tag: str) -> str | None:
        try:
            described = self._ecr.describe_images(
                repositoryName=self.repository_name, imageIds=[{"imageTag": tag}]
            )
        except self._ecr.exceptions.ImageNotFoundException:
            return None
        details = described.get("imageDetails", [])
        if not details:
            return None
        return f"{self.repository_uri}@{details[0]['imageDigest']}"

    def build(self, tag: str) -> str:
        import boto3

        codebuild = self._codebuild or boto3.client("codebuild")
        build_id = codebuild.start_build(**build_request(self._project, tag))["build"]["id"]
        while True:
            build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
            status = build.get("buildStatus", "IN_PROGRESS")
            if status == "SUCCEEDED":
                break
            if status != "IN_PROGRESS":
                raise RuntimeError(f"build {build_id} ended {status}")
            self._sleep(BUILD_POLL_S)
        image = self.find(tag)
        if image is None:
            raise RuntimeError(f"build {build_id} succeeded but pushed no image tagged {tag}")
        return image
