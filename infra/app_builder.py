"""Assemble the Whetstone app: data → build → compute → workflow → api → observability."""

from __future__ import annotations

from aws_cdk import App, Tags

from infra.constants import (
    APP_NAME,
    CTX_CLUSTER_NAME,
    CTX_LAYER_DIR,
    CTX_NODE_CLASS,
    DEFAULT_CLUSTER_NAME,
    REPO_ROOT,
    STACK_PREFIX,
)
from infra.nag import add_nag_checks
from infra.stacks.api_stack import ApiStack
from infra.stacks.build_stack import BuildStack
from infra.stacks.compute_stack import ComputeStack
from infra.stacks.data_stack import DataStack
from infra.stacks.observability_stack import ObservabilityStack
from infra.stacks.workflow_stack import WorkflowStack
from whetstone.service.images import trainer_image_tag


def build_app(app: App | None = None) -> App:
    """The app with its six stacks; environment-agnostic, so it synthesizes offline."""
    app = app or App()
    layer_dir = app.node.try_get_context(CTX_LAYER_DIR)
    # A cluster name in the context imports that cluster; without one, the app creates its own.
    existing_cluster = app.node.try_get_context(CTX_CLUSTER_NAME)
    cluster_name = existing_cluster or DEFAULT_CLUSTER_NAME
    Tags.of(app).add("app", APP_NAME.lower())

    data = DataStack(app, f"{STACK_PREFIX}Data")
    build = BuildStack(app, f"{STACK_PREFIX}Build")
    compute = ComputeStack(
        app,
        f"{STACK_PREFIX}Compute",
        cluster_name=cluster_name,
        create_cluster=not existing_cluster,
        node_class=app.node.try_get_context(CTX_NODE_CLASS),
    )
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
        cluster_name=cluster_name,
    )
    observability = ObservabilityStack(
        app, f"{STACK_PREFIX}Observability", cluster_name=cluster_name
    )
    # The stacks share fixed names, not exports; deploy order:
    # data → build → compute → workflow → api → observability.
    build.add_stack_dependency(data)
    compute.add_stack_dependency(build)
    workflow.add_stack_dependency(compute)
    api.add_stack_dependency(workflow)
    observability.add_stack_dependency(api)
    add_nag_checks(app)
    return app
