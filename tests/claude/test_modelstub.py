"""The model stub's wire: SSE and JSON answers, turns from the conversation, side requests, faults, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from stub_harness import KEY, LAB_SCENARIOS, RunningStub, request_body, sse_events

from labctl.errors import LabError
from labctl.modelstub.__main__ import main as stub_main
from labctl.modelstub.scenario import load, load_dir

FAULTY = """
description: faults first
prompt: go
turns:
  - text: first
    tools: [{name: Write, input: {file_path: a.txt, content: "x\\n"}}]
    usage: {input: 10, output: 5, cache_read: 1, cache_creation: 2}
    faults:
      - {status: 429, retry_after: 2}
      - {status: 529}
  - text: done
    faults:
      - {status: 529, mid_stream: true}
"""


@pytest.fixture(scope="module")
def stub() -> RunningStub:
    with RunningStub(LAB_SCENARIOS, default="hello-write") as running:
        yield running


def post(
    stub: RunningStub, body: object, headers: dict[str, str] | None = None, path: str = "/v1/messages"
) -> requests.Response:
    return requests.post(
        stub.url + path,
        data=json.dumps(body),
        timeout=10,
        headers={**KEY, "content-type": "application/json", **(headers or {})},
    )


def session(name: str) -> dict[str, str]:
    return {"x-claude-code-session-id": name}


def test_every_lab_scenario_is_valid() -> None:
    scenarios = load_dir(LAB_SCENARIOS)
    assert {"hello-write", "edit-bash", "retries", "ten-turns"} <= set(scenarios)
    assert len(scenarios["ten-turns"].turns) == 10


def test_a_streamed_turn_has_the_apis_event_sequence(stub: RunningStub) -> None:
    resp = post(stub, request_body(), session("s-stream"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["request-id"].startswith("req_")
    events = sse_events(resp.text)
    names = [e for e, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] == 1200 and start["usage"]["cache_creation_input_tokens"] == 2400
    text = "".join(d["delta"]["text"] for e, d in events if e == "content_block_delta" and d["index"] == 0)
    assert text == "I'll create hello.py."
    tool_start = next(d for e, d in events if e == "content_block_start" and d["index"] == 1)["content_block"]
    assert (
        tool_start["type"] == "tool_use"
        and tool_start["name"] == "Write"
        and tool_start["id"].startswith("toolu_")
    )
    partial = "".join(
        d["delta"]["partial_json"]
        for e, d in events
        if e == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    # The scenario's relative path, resolved against the client's working directory (absolute for the client).
    assert json.loads(partial) == {
        "file_path": "/tmp/work/hello.py",
        "content": "print('hello from the lab')\n",
    }
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == 60


def test_turns_follow_the_conversation_and_repeat_deterministically(stub: RunningStub) -> None:
    second = post(stub, request_body(assistant_turns=1, stream=False), session("s-turns")).json()
    assert second["content"] == [{"type": "text", "text": "Created hello.py; run it with `python hello.py`."}]
    assert second["stop_reason"] == "end_turn" and second["usage"]["cache_read_input_tokens"] == 2400
    again = post(stub, request_body(assistant_turns=1, stream=False), session("s-turns")).json()
    assert again["id"] == second["id"]  # same seed, session and turn: same ids
    beyond = post(stub, request_body(assistant_turns=5, stream=False), session("s-turns")).json()
    assert "no more scripted turns" in beyond["content"][0]["text"]


def test_side_requests_never_consume_a_turn(stub: RunningStub) -> None:
    before = requests.get(stub.url + "/stub/stats", timeout=5).json()
    side = post(
        stub, request_body(tools=False, stream=False, model="claude-haiku-5-5"), session("s-side")
    ).json()
    assert side["content"][0]["text"] == "Lab session" and side["model"] == "claude-haiku-5-5"
    first = post(stub, request_body(stream=False), session("s-side")).json()
    assert first["content"][1]["name"] == "Write"  # still the first scripted turn
    after = requests.get(stub.url + "/stub/stats", timeout=5).json()
    assert after["side_requests"] == before["side_requests"] + 1 and after["turns"] == before["turns"] + 1
    assert after["stub_ms_per_turn"]["count"] >= 1 and after["stub_ms_per_turn"]["max"] < 1000
    cpu = after["stub_cpu_ms_per_turn"]
    assert (
        cpu["count"] == after["stub_ms_per_turn"]["count"]
        and 0 < cpu["p50"] <= cpu["p95"] <= cpu["max"] < 1000
    )


def test_faults_play_in_order_then_the_answer(tmp_path: Path) -> None:
    (tmp_path / "faulty.yaml").write_text(FAULTY)
    with RunningStub(tmp_path) as stub:
        first = post(stub, request_body(), session("s1"))
        assert first.status_code == 429 and first.headers["retry-after"] == "2"
        assert first.json()["type"] == "error" and first.json()["error"]["type"] == "rate_limit_error"
        assert first.json()["request_id"] == first.headers["request-id"]
        second = post(stub, request_body(), session("s1"))
        assert second.status_code == 529 and second.json()["error"]["type"] == "overloaded_error"
        assert "retry-after" not in second.headers
        third = post(stub, request_body(), session("s1"))
        assert third.status_code == 200 and sse_events(third.text)[-1][0] == "message_stop"
        other = post(stub, request_body(), session("s2"))  # another session starts its own script
        assert other.status_code == 429
        mid = sse_events(post(stub, request_body(assistant_turns=1), session("s1")).text)
        assert [e for e, _ in mid] == ["message_start", "error"]
        assert mid[1][1]["error"]["type"] == "overloaded_error"
        done = sse_events(post(stub, request_body(assistant_turns=1), session("s1")).text)
        assert done[-1][0] == "message_stop"


def test_small_endpoints(stub: RunningStub) -> None:
    models = requests.get(stub.url + "/v1/models", headers=KEY, timeout=5).json()
    ids = [m["id"] for m in models["data"]]
    assert "claude-opus-5-5" in ids and models["first_id"] == ids[0] and models["has_more"] is False
    one = requests.get(stub.url + "/v1/models/claude-haiku-5-5", headers=KEY, timeout=5).json()
    assert one["type"] == "model"
    counted = post(
        stub,
        {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]},
        path="/v1/messages/count_tokens",
    ).json()
    assert counted["input_tokens"] >= 100
    assert requests.head(stub.url + "/api/hello", timeout=5).status_code == 200
    assert requests.get(stub.url + "/healthz", timeout=5).json()["status"] == "ok"
    listed = requests.get(stub.url + "/stub/scenarios", timeout=5).json()
    assert {"name": "hello-write", "default": True}.items() <= next(
        s for s in listed if s["name"] == "hello-write"
    ).items()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "error_type"),
    [
        ("POST", "/v1/messages", b"{not json", {}, 400, "invalid_request_error"),
        ("POST", "/v1/messages", b"[1, 2]", {}, 400, "invalid_request_error"),
        (
            "POST",
            "/v1/messages",
            json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}).encode(),
            {},
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/messages",
            json.dumps({"model": "m", "max_tokens": 5, "messages": []}).encode(),
            {},
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/messages",
            json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(),
            {},
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/messages",
            json.dumps(request_body()).encode(),
            {"x-lab-scenario": "nope"},
            400,
            "invalid_request_error",
        ),
        (
            "POST",
            "/v1/messages",
            json.dumps(request_body()).encode(),
            {"x-api-key": ""},
            401,
            "authentication_error",
        ),
        ("GET", "/v1/messages", b"", {}, 405, "invalid_request_error"),
        ("GET", "/v1/nothing", b"", {}, 404, "not_found_error"),
        ("GET", "/v1/models/claude-imaginary", b"", {}, 404, "not_found_error"),
    ],
)
def test_bad_requests_get_the_apis_error_shape(
    stub: RunningStub,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
) -> None:
    resp = requests.request(
        method,
        stub.url + path,
        data=body,
        timeout=5,
        headers={**KEY, "content-type": "application/json", **headers},
    )
    assert resp.status_code == status
    doc = resp.json()
    assert doc["type"] == "error" and doc["error"]["type"] == error_type and doc["error"]["message"]
    assert resp.headers["request-id"] == doc["request_id"]


def test_oversized_body_is_request_too_large(stub: RunningStub) -> None:
    resp = requests.post(stub.url + "/v1/messages", data=b"x" * (33 * 1024 * 1024), headers=KEY, timeout=30)
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(
    ("text", "where", "fix"),
    [
        ("description: d\nprompt: p\nturns: []\n", "turns", "add at least one"),
        (
            "description: d\nprompt: p\nturns: [{text: t, faults: [{status: 418}]}]\n",
            "turns[0].faults[0].status",
            "529",
        ),
        (
            "description: d\nprompt: p\nturns: [{text: t, usage: {input: -3}}]\n",
            "turns[0].usage.input",
            "number",
        ),
        ("description: d\nprompt: p\nturns: [{txt: t}]\n", "turns[0]", "valid keys"),
        ("description: d\nturns: [{text: t}]\n", "(top level)", "prompt"),
        ("description: d\nprompt: p\nturns: [{tools: [{input: {}}]}]\n", "turns[0].tools[0]", "name"),
        ("description: d\nprompt: p\nturns:\n  - text: [unclosed\n", "line", "indentation"),
    ],
)
def test_scenario_errors_name_file_path_and_fix(tmp_path: Path, text: str, where: str, fix: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LabError) as err:
        load(path)
    assert str(path) in err.value.message and where in err.value.message
    assert fix in (err.value.hint or "") + err.value.message


def test_the_stub_refuses_to_start_on_a_bad_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("description: d\nprompt: p\nturns: [{text: t, usage: {output: x}}]\n")
    assert stub_main(["--scenarios", str(tmp_path), "--listen", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: turns[0].usage.output" in err and "→" in err


def test_the_log_has_one_line_per_request_and_no_content(tmp_path: Path) -> None:
    (tmp_path / "faulty.yaml").write_text(FAULTY)
    log = tmp_path / "requests.jsonl"
    with RunningStub(tmp_path, log=log) as stub:
        post(stub, request_body(prompt="secret prompt text"), session("s1"))  # 429, scripted
        post(stub, request_body(prompt="secret prompt text"), session("s1"))  # 529, scripted
        post(stub, request_body(prompt="secret prompt text"), session("s1"))  # the answer
        post(stub, request_body(tools=False), session("s1"))  # a side request
        post(stub, {"model": "m"}, session("s1"))  # a bad request
        requests.head(stub.url + "/api/hello", timeout=5)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["kind"], x["status"]) for x in lines] == [
        ("fault", 429),
        ("fault", 529),
        ("turn", 200),
        ("side", 200),
        ("http", 400),
        ("http", 200),
    ]
    assert lines[-1]["method"] == "HEAD" and lines[-1]["path"] == "/api/hello"
    assert "secret" not in log.read_text()


def test_a_subagent_plays_its_own_script(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with RunningStub(LAB_SCENARIOS, default="subagent", log=log) as stub:
        main = post(stub, request_body(stream=False), session("s-agent")).json()
        assert main["content"][1]["name"] == "Agent" and main["content"][1]["input"]["model"] == "haiku"
        agent = {**session("s-agent"), "x-claude-code-agent-id": "a1"}
        helper = post(stub, request_body(stream=False, model="claude-haiku-5-5"), agent).json()
        assert helper["content"] == [{"type": "text", "text": "The folder is empty."}]
        assert helper["model"] == "claude-haiku-5-5" and helper["usage"]["input_tokens"] == 700
        final = post(stub, request_body(assistant_turns=1, stream=False), session("s-agent")).json()
        assert final["content"][0]["text"] == "The helper found an empty folder."
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["turn"], x.get("agent")) for x in lines] == [(0, None), (0, "a1"), (1, None)]
    assert {x["session"] for x in lines} == {"s-agent"}
