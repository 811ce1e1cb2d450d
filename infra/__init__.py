"""The CDK app of Whetstone's aws runtime (see docs/infra.md)."""
