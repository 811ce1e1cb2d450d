"""A generic Kubernetes client on plain dicts: create, read, list, annotate and delete objects
by kind, and POST to a Service through the API server's proxy.

Every call goes through one place that tries a throttled (429) or failing (5xx) call again
with exponential backoff, then maps what is left to the domain's errors: 429, 5xx and an
unreachable server become `KubernetesUnavailable`, a TransientError (the state machine's
Retry matches it by name; the API answers 503); a missing object (404) or an existing one
on create (409) is an answer, not an error; any other status is a bug or a misconfiguration
and escapes as the client's ApiException.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from whetstone.core.errors import TransientError
from whetstone.core.serving import ServerRefused

Manifest = dict[str, Any]
Headers = Mapping[str, str]
T = TypeVar("T")

NOT_FOUND = 404
CONFLICT = 409
PROXY_TIMEOUT_S = 120


class KubernetesUnavailable(TransientError):
    """The API server throttled (429), failed (5xx) or could not be reached: worth a retry.
    The state machine's Retry matches this name."""


class KubeApi(Protocol):
    """The Kubernetes calls the compute and the deployer make, on plain dicts."""

    def apply(self, manifest: Manifest) -> None:
        """Create the object; an existing one (409) is left as it is."""

    def read(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object, or None when there is none."""

    def list_objects(
        self, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Manifest]:
        """The objects of `kind` carrying `labels`, in `namespace` (None: in every one)."""

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Merge `annotations` into the object's."""

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete the object (a Job or Deployment with its pods); a missing one is fine."""

    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: Manifest, headers: Headers
    ) -> Manifest:
        """POST JSON, with `headers`, to the Service through the API server's proxy; the
        JSON answer, or ServerRefused with the Service's status and body. The proxy drops
        `Authorization`: other headers reach the Service."""

    def get_from_service(self, namespace: str, service: str, port: str, path: str) -> str:
        """GET a text page of the Service through the API server's proxy."""


@dataclass(frozen=True)
class Backoff:
    """How a throttled or failing call is tried again before `KubernetesUnavailable` hands
    the retry to the caller: `attempts` tries in all, waiting `first_delay_s`, then
    `factor` times longer each time."""

    attempts: int = 3
    first_delay_s: float = 0.5
    factor: float = 2.0

    def delay_s(self, attempt: int) -> float:
        """The wait after failed try number `attempt` (from 1)."""
        return self.first_delay_s * self.factor ** (attempt - 1)


@dataclass(frozen=True)
class _Kind:
    api: str  # the class of kubernetes.client that serves the kind
    resource: str  # its methods' suffix: create_namespaced_<resource> ...
    namespaced: bool = True
    # Deleted in the foreground: its pods go before it does.
    owns_pods: bool = False


_KINDS = {
    "Namespace": _Kind("CoreV1Api", "namespace", namespaced=False),
    "ResourceQuota": _Kind("CoreV1Api", "resource_quota"),
    "ServiceAccount": _Kind("CoreV1Api", "service_account"),
    "Secret": _Kind("CoreV1Api", "secret"),
    "ConfigMap": _Kind("CoreV1Api", "config_map"),
    "Service": _Kind("CoreV1Api", "service"),
    "Pod": _Kind("CoreV1Api", "pod"),
    "Event": _Kind("CoreV1Api", "event"),
    "Job": _Kind("BatchV1Api", "job", owns_pods=True),
    "Deployment": _Kind("AppsV1Api", "deployment", owns_pods=True),
    "NetworkPolicy": _Kind("NetworkingV1Api", "network_policy"),
}


def label_selector(labels: Mapping[str, str]) -> str:
    """`labels` as a Kubernetes label selector (every one must match)."""
    return ",".join(f"{key}={value}" for key, value in labels.items())


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _operation(api: Any, kind: str, verb: str, namespace: str | None) -> Callable[..., Any]:
    """The typed client's method for `verb` on `kind`, in `namespace` (None: in all)."""
    from kubernetes import client

    if kind not in _KINDS:
        raise ValueError(f"no way to {verb} a {kind}")
    spec = _KINDS[kind]
    typed = getattr(client, spec.api)(api)
    if spec.namespaced and namespace is not None:
        return functools.partial(
            getattr(typed, f"{verb}_namespaced_{spec.resource}"), namespace=namespace
        )
    suffix = "_for_all_namespaces" if spec.namespaced else ""
    method: Callable[..., Any] = getattr(typed, f"{verb}_{spec.resource}{suffix}")
    return method


class KubeClient:
    """KubeApi over the official `kubernetes` client; `connect` gives an authenticated
    ApiClient for each call."""

    def __init__(
        self,
        connect: Callable[[], Any],
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connect = connect
        self._backoff = backoff
        self._sleep = sleep

    def _call(self, request: Callable[[Any], T], *, answer: tuple[int, T] | None = None) -> T:
        """`request` on a fresh ApiClient, tried again on 429/5xx. `answer` is (status,
        value): the API answering that status means the value (a read's 404: None).
        Every request sent through here must be safe to repeat: reads, deletes, creates
        (a repeat answers 409, which apply takes as done) and the golden request."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        attempt = 1
        while True:
            try:
                return request(self._connect())
            except ApiException as error:
                status = error.status or 0
                if answer is not None and status == answer[0]:
                    return answer[1]
                if not _is_transient(status):
                    raise
                if attempt >= self._backoff.attempts:
                    raise KubernetesUnavailable(f"the Kubernetes API answered {status}") from error
            except HTTPError as error:
                raise KubernetesUnavailable(
                    f"the Kubernetes API is unreachable: {error}"
                ) from error
            self._sleep(self._backoff.delay_s(attempt))
            attempt += 1

    def apply(self, manifest: Manifest) -> None:
        kind, namespace = manifest["kind"], manifest["metadata"].get("namespace")
        # The typed client wants models; plain dicts are what it serializes anyway.
        self._call(
            lambda api: _operation(api, kind, "create", namespace)(body=manifest),
            answer=(CONFLICT, None),
        )

    def read(self, kind: str, namespace: str, name: str) -> Manifest | None:
        def request(api: Any) -> Manifest | None:
            found = _operation(api, kind, "read", namespace)(name=name)
            return dict(api.sanitize_for_serialization(found))

        return self._call(request, answer=(NOT_FOUND, None))

    def list_objects(
        self, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Manifest]:
        selector = {"label_selector": label_selector(labels)} if labels else {}

        def request(api: Any) -> list[Manifest]:
            found = _operation(api, kind, "list", namespace)(**selector)
            return list(api.sanitize_for_serialization(found).get("items", []))

        return self._call(request)

    def annotate(self, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
        body = {"metadata": {"annotations": annotations}}
        self._call(lambda api: _operation(api, kind, "patch", namespace)(name=name, body=body))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        owns_pods = kind in _KINDS and _KINDS[kind].owns_pods
        options = {"propagation_policy": "Foreground"} if owns_pods else {}
        self._call(
            lambda api: _operation(api, kind, "delete", namespace)(name=name, **options),
            answer=(NOT_FOUND, None),
        )

    def post_to_service(
        self, namespace: str, service: str, port: str, path: str, body: Manifest, headers: Headers
    ) -> Manifest:
        data = self._proxy(
            "POST",
            f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}",
            {"Content-Type": "application/json", "Accept": "application/json", **headers},
            body,
        )
        answer: Manifest = json.loads(data)
        return answer

    def get_from_service(self, namespace: str, service: str, port: str, path: str) -> str:
        url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
        return self._proxy("GET", url, {"Accept": "text/plain"}, None).decode(errors="replace")

    def _proxy(
        self, method: str, path: str, headers: dict[str, str], body: Manifest | None
    ) -> bytes:
        """The body of the Service's answer through the API server's proxy."""

        def request(api: Any) -> bytes:
            from kubernetes.client.exceptions import ApiException

            serialized = api.param_serialize(
                method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = api.call_api(*serialized, _request_timeout=PROXY_TIMEOUT_S)
            data: bytes = response.read()
            text = data.decode(errors="replace")
            if _is_transient(response.status):  # not there yet, or throttled
                raise ApiException(status=response.status, reason=text)
            if response.status >= 400:  # the server refused the request
                raise ServerRefused(response.status, text)
            return data

        return self._call(request)
