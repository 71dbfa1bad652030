"""Logs and metrics of the real server process: the whole log holds one JSON line per
request and no secret; one scrape sums every worker."""

from __future__ import annotations

import contextlib
import json
import stat
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import LiveServer, bearer, start_server

running = contextlib.contextmanager(start_server)
ISSUE = "/api/v1/federate/issue-token"
AWS = "sts.amazonaws.com"
GCP = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
UNKNOWN_KEY = "wk-" + "u" * 43  # well formed, never issued


class Requests:
    """Sends requests to a live server and counts them (but for start-up's /healthz)."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.count = 0

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        self.count += 1
        # NOTE: a new connection each time, so that every worker gets some of them
        return httpx.request(method, f"{self.server.url}{path}", timeout=10, **options)

    def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.send("POST", path, json=body, headers=bearer(self.server.admin_key))
        assert response.status_code == 201, response.text
        return dict(response.json())


def private_key_lines(keys_dir: Path) -> list[str]:
    lines = [
        line.strip()
        for path in keys_dir.rglob("*")
        if path.is_file() and "PRIVATE KEY" in path.read_text(errors="replace")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert len(lines) > 10  # an ES256 and an RS256 key at least
    return lines


def request_lines(log: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in found if line.get("path") != "/healthz"]


def test_the_whole_server_log_holds_no_secret(tmp_path: Path) -> None:
    home = tmp_path / "server"
    secrets: list[str] = []
    tokens: list[str] = []
    with running(home, f"sqlite:///{home}/var/federation.db") as server:
        requests = Requests(server)
        secrets.append(server.admin_key)
        requests.created("/api/v1/principals", {"type": "user", "uid": "ada", "teams": ["t1"]})
        key = requests.created(
            "/api/v1/api-keys",
            {"name": "k", "type": "personal", "principal_uid": "ada", "scopes": ["federate"]},
        )["key"]
        run = requests.created("/api/v1/runs", {"principal_uid": "ada", "state": "INPROGRESS"})
        token = run["workload_token"]
        secrets += [key, token]
        agent = {**bearer(key), "X-Warp-Ambient-Workload-Token": token}
        for body in ({"audience": AWS}, {"audience": AWS, "algorithm": "RS256"}, {"audience": GCP}):
            issued = requests.send(
                "POST", ISSUE, json={"run_id": run["run_id"], **body}, headers=agent
            )
            assert issued.status_code == 200, issued.text
            tokens.append(issued.json()["token"])
        refusals = [
            ("POST", ISSUE, {**agent, **bearer(UNKNOWN_KEY)}, 401),
            ("POST", ISSUE, {**agent, "Authorization": f"Bearer {key[:-1]}"}, 401),
            ("POST", ISSUE, {**agent, "X-Warp-Ambient-Workload-Token": token[:-1] + "x"}, 403),
            ("GET", f"/api/v1/principals?cursor={key}", bearer(key), 403),
            (
                "GET",
                f"/api/v1/whoami?api_key={server.admin_key}",
                bearer(server.admin_key[:-1]),
                401,
            ),
        ]
        for method, path, headers, status in refusals:
            sent = {"run_id": run["run_id"], "audience": AWS} if method == "POST" else None
            response = requests.send(method, path, json=sent, headers=headers)
            assert response.status_code == status, response.text
    log = server.log.read_text()  # the server has stopped: everything is written
    lines = request_lines(log)
    assert len(lines) == requests.count  # one line per request
    assert [line["status"] for line in lines[-len(refusals) :]] == [401, 401, 403, 403, 401]
    assert all("?" not in line["path"] for line in lines)
    secrets += tokens + [token.rsplit(".", 1)[1] for token in tokens]  # signatures alone
    secrets += private_key_lines(home / "keys")
    leaked = [number for number, secret in enumerate(secrets) if secret in log]
    assert leaked == []


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def scrape(server: LiveServer) -> str:
    response = httpx.get(f"{server.url}/metrics", headers=bearer(server.admin_key), timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_one_scrape_sums_every_worker_and_a_restart_starts_from_zero(tmp_path: Path) -> None:
    home = tmp_path / "server"
    database = f"sqlite:///{home}/var/federation.db"
    jwks = "/.well-known/jwks.json"
    served = "federation_request_duration_seconds_count"
    with running(home, database, workers=2) as server:
        requests = Requests(server)
        pids: set[int] = set()
        for _ in range(200):  # bounded: granian spreads connections over both workers
            assert requests.send("GET", jwks).status_code == 200
            pids = {
                line["pid"]
                for line in request_lines(server.log.read_text())
                if line["path"] == jwks
            }
            if len(pids) == 2 and requests.count >= 10:
                break
        assert len(pids) == 2, "every request landed on one worker"
        for _ in range(4):  # whichever worker answers the scrape, it sums both
            text = scrape(server)
            assert metric(text, served, route=jwks, method="GET") == requests.count
        (directory,) = (home / "var" / "metrics").iterdir()
        assert directory.name.startswith("serve-")
        assert stat.S_IMODE((home / "var" / "metrics").stat().st_mode) == 0o700
        assert len(list(directory.glob("histogram_*.db"))) == 2  # one file per worker
    with running(home, database) as again:
        text = scrape(again)
        assert metric(text, served, route=jwks, method="GET") == 0
        assert not directory.exists()  # the stopped server's files are gone
