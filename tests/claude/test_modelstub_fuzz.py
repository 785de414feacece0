"""Fuzzed requests to the model stub: whatever arrives, the answer is the API's shape (an error with a
request-id, or a real message), never a 5xx, a traceback or a dead server."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fuzz_budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stub_harness import KEY, LAB_SCENARIOS, RunningStub, request_body

from labctl.modelstub.server import MAX_BODY_BYTES

# 300 examples per test under run-all.sh's thorough profile, a tenth in the fast lane (tests/fuzz_budget.py).
FUZZ = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# Bodies close to a real request, each field possibly replaced by something of the wrong kind.
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.just("claude-opus-5-5"), json_values),
        "max_tokens": st.one_of(st.integers(-5, 100_000), json_values),
        "stream": st.one_of(st.booleans(), json_values),
        "messages": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "assistant", "system", "tool", 3]),
                        "content": st.one_of(st.text(max_size=20), json_values),
                    }
                ),
                max_size=4,
            ),
            json_values,
        ),
        "tools": st.one_of(st.just([{"name": "Write", "input_schema": {}}]), json_values),
        "system": json_values,
        "metadata": st.one_of(st.just({"user_id": '{"session_id": "fuzz"}'}), json_values),
    },
)


@pytest.fixture(scope="module")
def stub() -> Iterator[RunningStub]:
    with RunningStub(LAB_SCENARIOS, default="hello-write") as running:
        yield running


def assert_api_shape(resp: requests.Response) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    assert resp.headers.get("request-id", "").startswith("req_")
    if resp.status_code >= 400:
        doc = resp.json()
        assert doc["type"] == "error" and isinstance(doc["error"]["type"], str) and doc["error"]["message"]
        assert doc["request_id"] == resp.headers["request-id"]
    elif resp.headers["content-type"].startswith("text/event-stream"):
        assert resp.text.rstrip().endswith('data: {"type":"message_stop"}')
    else:
        doc = resp.json()
        assert "input_tokens" in doc or doc["type"] == "message"


def post(
    stub: RunningStub, path: str, data: bytes, headers: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        stub.url + path,
        data=data,
        timeout=10,
        headers={**KEY, "content-type": "application/json", **(headers or {})},
    )


@FUZZ
@given(body=st.binary(max_size=2000))
def test_random_bytes(stub: RunningStub, body: bytes) -> None:
    assert_api_shape(post(stub, "/v1/messages", body))


@FUZZ
@given(body=json_values, path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]))
def test_random_json(stub: RunningStub, body: Any, path: str) -> None:
    assert_api_shape(post(stub, path, json.dumps(body).encode()))


@FUZZ
@given(
    body=near_valid,
    path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]),
    session=st.text(string.printable.strip(), max_size=200),
    scenario=st.text(string.printable.strip(), max_size=40),
)
def test_near_valid_requests(
    stub: RunningStub, body: dict[str, Any], path: str, session: str, scenario: str
) -> None:
    headers = {"x-claude-code-session-id": session}
    if scenario:
        headers["x-lab-scenario"] = scenario
    assert_api_shape(post(stub, path, json.dumps(body).encode(), headers))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.text(string.ascii_letters + string.digits + "/_-.%", max_size=40),
)
def test_random_paths_and_methods(stub: RunningStub, method: str, path: str) -> None:
    resp = requests.request(method, f"{stub.url}/{path.lstrip('/')}", timeout=10, headers=KEY)
    if resp.status_code < 400 and method == "GET":
        return  # a real GET endpoint (/, /healthz, /v1/models, /stub/...) answered
    assert_api_shape(resp)


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, MAX_BODY_BYTES * 2])
def test_oversized_bodies(stub: RunningStub, size: int) -> None:
    body = json.dumps({**request_body(), "pad": "x" * size}).encode()
    resp = post(stub, "/v1/messages", body)
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "request_too_large"
    assert_api_shape(resp)


def test_still_serving_after_the_fuzzing(stub: RunningStub) -> None:
    assert requests.get(stub.url + "/healthz", timeout=5).json()["status"] == "ok"
    answer = post(
        stub,
        "/v1/messages",
        json.dumps(request_body(stream=False)).encode(),
        {"x-claude-code-session-id": "after-fuzz"},
    )
    assert answer.status_code == 200 and answer.json()["content"][1]["name"] == "Write"


turn_like = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values,
        "tools": json_values,
        "usage": st.one_of(
            st.fixed_dictionaries({}, optional=dict.fromkeys(("input", "output", "cache_read"), json_values)),
            json_values,
        ),
        "faults": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "status": st.one_of(st.sampled_from([429, 500, 529, 418]), json_values),
                        "retry_after": json_values,
                        "mid_stream": json_values,
                    },
                ),
                max_size=2,
            ),
            json_values,
        ),
        "first_token_delay_ms": json_values,
        "model": json_values,
        "stop_reason": json_values,
    },
)
scenario_like = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "description": json_values,
            "prompt": json_values,
            "seed": json_values,
            "allowed_tools": json_values,
            "max_retries": json_values,
            "turns": st.one_of(st.lists(turn_like, max_size=3), json_values),
        },
    ),
)


@FUZZ
@given(doc=scenario_like)
def test_any_scenario_document_loads_or_says_what_to_fix(
    tmp_path_factory: pytest.TempPathFactory, doc: Any
) -> None:
    from labctl.errors import LabError
    from labctl.modelstub.scenario import parse

    path = tmp_path_factory.getbasetemp() / "fuzzed.yaml"
    try:
        scenario = parse(doc, path)
    except LabError as exc:
        assert str(path) in exc.message and exc.hint  # the file, the place in it, and the fix
    else:
        assert scenario.turns and scenario.prompt == doc["prompt"]
        scenario.expected()  # what a run must add up to is computable for every valid scenario
