"""The deployable stacks: data, build, workflow, api."""
