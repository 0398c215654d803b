"""Helpers for the emulator's own tests: a small client and world checks."""
from __future__ import annotations

import requests


class Client:
    """A thin requests wrapper that talks to one Emulator with one credential."""

    def __init__(self, emu, token: str | None = None):
        self.emu = emu
        self.session = requests.Session()
        self.token = token if token is not None else emu.api_key

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        url = path if path.startswith("http") else self.emu.base_url + path
        return self.session.request(method, url, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def list_all(self, path: str, **params) -> list[dict]:
        rows, page = [], 1
        while True:
            r = self.get(path, params={**params, "page": page, "per_page": 100})
            assert r.status_code == 200, r.text
            body = r.json()
            rows.extend(body["data"])
            if not body["data"] or len(body["data"]) < 100:
                return rows
            page += 1


def assert_error_envelope(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["success"] is False
    assert body["error"]["status"] == status
    assert body["request_id"].startswith("req_")
    assert body["request_id"] == response.headers["X-Request-Id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def cents(x) -> int:
    return int(round(x * 100))
