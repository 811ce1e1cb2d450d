"""The SDK's HTTP: where the API is, the bearer token, one call and its errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import IO, Any, TypeVar

from pydantic import BaseModel

from whetstone.api.paths import API_PREFIX
from whetstone.client_config import resolve_connection
from whetstone.client_errors import WhetstoneConnectionError, api_error
from whetstone.client_http import query_string

DEFAULT_TIMEOUT_S = 60.0

ModelT = TypeVar("ModelT", bound=BaseModel)


class Transport:
    """The connection to the API and its HTTP calls, on the standard library."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        connection = resolve_connection(base_url, token)
        self.base_url = connection.base_url
        self.token = connection.token
        self.timeout = timeout

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _open(
        self,
        method: str,
        path: str,
        *,
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> Any:
        """The open HTTP response; raises WhetstoneAPIError or WhetstoneConnectionError."""
        url = self._url(path)
        request = urllib.request.Request(url, data=data, method=method)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if authenticate and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            with error:
                raise api_error(error.code, error.read()) from None
        except urllib.error.URLError as error:
            raise WhetstoneConnectionError(self.base_url, str(error.reason)) from error
        except (TimeoutError, ConnectionError) as error:
            raise WhetstoneConnectionError(
                self.base_url, str(error) or type(error).__name__
            ) from error

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call; the parsed JSON response (None when empty)."""
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        target = f"{API_PREFIX}{path}{query_string(params or {})}"
        try:
            with self._open(method, target, data=body, headers=all_headers) as response:
                raw = response.read()
        except (TimeoutError, ConnectionError) as error:
            raise WhetstoneConnectionError(
                self.base_url, str(error) or type(error).__name__
            ) from error
        return json.loads(raw) if raw else None

    def _get(self, model: type[ModelT], path: str, **params: Any) -> ModelT:
        return model.model_validate(self.request("GET", path, params=params))
