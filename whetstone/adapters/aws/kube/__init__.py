"""Kubernetes for the aws adapters: a generic client, EKS authentication, and the training
and serving manifests as pure functions.

`kubernetes` is imported only inside the client's calls: importing these modules costs the
API Lambda's cold start nothing.
"""
