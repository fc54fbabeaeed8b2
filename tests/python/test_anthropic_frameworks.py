"""LangChain's `ChatAnthropic` (langchain-anthropic) with its base URL set to the pool: invoke,
stream, a conversation going on, and a tool call bound with `bind_tools`, on the fake and the
real CLI."""
import re

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from conftest import KEY


def chat(server, **kw):
    return ChatAnthropic(model="sonnet", anthropic_api_url=server["url"], api_key=KEY,
                         max_retries=0, max_tokens=1024, timeout=120, **kw)


def turn_of(server, text):
    if server["kind"] == "fake":
        return int(re.search(r"\[turn=(\d+)\]", text).group(1))
    return (int(re.search(r"\[n=(\d+)\]", text).group(1)) + 1) // 2


def test_langchain_invoke_and_a_second_turn(server):
    llm = chat(server)
    first = llm.invoke("hello from langchain")
    assert isinstance(first, AIMessage)
    assert first.text.startswith("echo: hello from langchain")
    assert turn_of(server, first.text) == 1
    assert first.usage_metadata["output_tokens"] > 0
    assert first.response_metadata["stop_reason"] == "end_turn"
    second = llm.invoke([HumanMessage("hello from langchain"), first, HumanMessage("and again")])
    assert second.text.startswith("echo: and again")
    assert turn_of(server, second.text) == 2, second.text


def test_langchain_stream(server):
    chunks = list(chat(server).stream("streamed through langchain [[long]]"))
    text = "".join(c.text for c in chunks)
    assert len(chunks) > 2
    assert text.startswith("echo: streamed through langchain")
    assert "word399" in text


def test_langchain_tool_call(server):
    llm = chat(server).bind_tools([{
        "name": "get_weather", "description": "Current weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}])
    ask = HumanMessage('Weather in Rome? [[call:get_weather {"city": "Rome"}]]')
    first = llm.invoke([ask])
    [call] = first.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Rome"}
    answer = llm.invoke([ask, first, ToolMessage("hot, 30 C", tool_call_id=call["id"])])
    assert "=hot, 30 C" in answer.text, answer.text
