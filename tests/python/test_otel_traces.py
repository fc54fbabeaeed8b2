"""OpenTelemetry traces of a tool round, with the real CLI (against the fake Anthropic API,
which calls the offered tools on `[[call:NAME {json}]]`): the gateway exports over OTLP/HTTP to a
receiver here that decodes `ExportTraceServiceRequest` with the official protobuf classes
(`opentelemetry-proto`). The request whose turn calls a tool is a server span with its `chat`
span, which ends with the tool call ids (never the arguments); the request bringing the result is
a server span with a `tool round` span, under which the rest of the turn has its `chat` span."""
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import KEY, REAL_CLI, free_port, running_server, wait_until, worker_toml

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
ROUTE = "POST /v1/chat/completions"


class Receiver(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver: the spans of every export to `/v1/traces`, decoded."""

    def __init__(self):
        self.spans, self.lock = [], threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers["content-length"]))
                req = ExportTraceServiceRequest.FromString(body)
                with self.lock:
                    for rs in req.resource_spans:
                        for ss in rs.scope_spans:
                            self.spans.extend(ss.spans)
                handler.send_response(200)
                handler.send_header("content-length", "0")
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def trace(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s.trace_id.hex() == trace_id]


@pytest.fixture(scope="module")
def traced(fake_api):
    if not REAL_CLI.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the real CLI is required in CI: {REAL_CLI} missing")
        pytest.skip("real CLI not installed (scripts/install-cli.sh)")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
log_level = "info"
[pool]
min_workers = 1
max_workers = 2
{worker_toml(REAL_CLI, tmp, fake_api)}[auth]
api_keys = ["{KEY}"]
[limits]
rate_limit_requests = 0
"""
    env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_address[1]}",
               OTEL_BSP_SCHEDULE_DELAY="100")
    with running_server(tmp, config, port, env=env) as url:
        yield {"url": url, "receiver": receiver}
    receiver.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


def tree(receiver, trace_id, names):
    """The spans of a trace by name, once all of `names` are there."""
    found = {}

    def complete():
        found.clear()
        found.update({s.name: s for s in receiver.trace(trace_id)})
        return all(n in found for n in names)

    wait_until(f"spans {names} of trace {trace_id}", complete, 20)
    return found


def attrs(span):
    out = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = [x.string_value for x in v.array_value.values] if kind == "array_value" \
            else getattr(v, kind)
    return out


def test_a_tool_round_is_a_span_with_the_call_ids_and_the_rest_of_the_turn_under_it(traced):
    c = openai.OpenAI(base_url=traced["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)
    first_trace, second_trace = "11" * 16, "22" * 16
    messages = [{"role": "user", "content": 'Weather in Paris? [[call:get_weather {"city": "Paris"}]]'}]
    first = c.chat.completions.create(
        model="sonnet", messages=messages, tools=[WEATHER],
        extra_headers={"traceparent": f"00-{first_trace}-{'aa' * 8}-01"})
    [call] = first.choices[0].message.tool_calls
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = c.chat.completions.create(
        model="sonnet", messages=messages, tools=[WEATHER],
        extra_headers={"traceparent": f"00-{second_trace}-{'bb' * 8}-01"})
    assert second.choices[0].finish_reason == "stop"

    # The request whose turn called the tool: its chat span ends with the call ids.
    t = tree(traced["receiver"], first_trace, [ROUTE, "gate", "admission", "queue wait", "chat sonnet"])
    server = t[ROUTE]
    assert server.kind == Span.SPAN_KIND_SERVER and server.parent_span_id.hex() == "aa" * 8
    for child in ["gate", "admission", "queue wait", "chat sonnet"]:
        assert t[child].parent_span_id == server.span_id, child
    chat = t["chat sonnet"]
    assert chat.kind == Span.SPAN_KIND_CLIENT
    assert attrs(chat)["gen_ai.response.finish_reasons"] == ["tool_calls"]
    [calls] = [e for e in chat.events if e.name == "gen_ai.tool_calls"]
    assert attrs(calls)["claude_pool.tool_call_ids"] == [call.id], "the ids the client sees"
    assert "queued_for_ms" not in str(attrs(chat))
    assert "claude_pool.queued_for_ms" in attrs(t["queue wait"])

    # The request bringing the result: a tool round, the rest of the turn under it.
    t = tree(traced["receiver"], second_trace, [ROUTE, "gate", "tool round", "chat sonnet"])
    server, round_, chat = t[ROUTE], t["tool round"], t["chat sonnet"]
    assert server.parent_span_id.hex() == "bb" * 8
    assert t["gate"].parent_span_id == server.span_id
    assert round_.parent_span_id == server.span_id
    assert chat.parent_span_id == round_.span_id
    assert "queue wait" not in t and "admission" not in t, "the parked turn holds its worker"
    [results] = [e for e in round_.events if e.name == "gen_ai.tool_results"]
    assert attrs(results)["claude_pool.tool_call_ids"] == [call.id]
    a = attrs(chat)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.system"] == "anthropic"
    assert a["gen_ai.usage.output_tokens"] > 0 and "claude_pool.cost_usd" in a
    assert any(e.name == "gen_ai.first_token" for e in chat.events)
    assert round_.status.code != Status.STATUS_CODE_ERROR

    # No span carries the tool's arguments or result, nor the message text.
    for s in traced["receiver"].spans:
        text = s.SerializeToString()
        for secret in [b"Paris", b"sunny", KEY.encode()]:
            assert secret not in text, (s.name, secret)
