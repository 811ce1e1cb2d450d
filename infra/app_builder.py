"""Assemble the Whetstone app: data → build → workflow → api."""

from __future__ import annotations

from aws_cdk import App, Tags

from infra.constants import (
    APP_NAME,
    CTX_CLUSTER_NAME,
    CTX_LAYER_DIR,
    DEFAULT_CLUSTER_NAME,
    REPO_ROOT,
    STACK_PREFIX,
)
from infra.nag import add_nag_checks
from infra.stacks.api_stack import ApiStack
from infra.stacks.build_stack import BuildStack
from infra.stacks.data_stack import DataStack
from infra.stacks.workflow_stack import WorkflowStack
from whetstone.service.images import trainer_image_tag


def build_app(app: App | None = None) -> App:
    """The app with its four stacks; environment-agnostic, so it synthesizes offline."""
    app = app or App()
    layer_dir = app.node.try_get_context(CTX_LAYER_DIR)
    cluster_name = app.node.try_get_context(CTX_CLUSTER_NAME) or DEFAULT_CLUSTER_NAME
    Tags.of(app).add("app", APP_NAME.lower())

    data = DataStack(app, f"{STACK_PREFIX}Data")
    build = BuildStack(app, f"{STACK_PREFIX}Build")
    workflow = WorkflowStack(
        app,
        f"{STACK_PREFIX}Workflow",
        layer_dir=layer_dir,
        cluster_name=cluster_name,
        trainer_image_tag=trainer_image_tag(REPO_ROOT),
    )
    api = ApiStack(
        app,
        f"{STACK_PREFIX}Api",
        layer_dir=layer_dir,
    )
    # The stacks share fixed names, not exports; deploy order: data → build → workflow → api.
    build.add_stack_dependency(data)
    workflow.add_stack_dependency(build)
    api.add_stack_dependency(workflow)
    add_nag_checks(app)
    return app
