"""The aws runtime on one machine: moto in server mode, the real state machine definition
and Lambda handlers, a Kubernetes API that runs Job containers as subprocesses, and the
trainer's EventBridge events delivered to the ingest handler (docs/workflow.md, "The aws
runtime end to end")."""
