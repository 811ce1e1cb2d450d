"""The pure domain of Whetstone: job spec, catalogs, estimates, lifecycle, datasets.

Imports nothing heavier than pydantic, so the API Lambda, the workflow and the
trainer can all share it.
"""
