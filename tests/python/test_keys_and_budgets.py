"""Keys, budgets and cost caps through the official `openai` client, with costs as the CLI
reports them. With the real CLI, the fake Anthropic API's `[[cost:N]]` reports N output tokens
and the CLI prices them; with the fake CLI, `[[cost:X]]` is a turn costing X USD."""
import openai
import pytest

from conftest import admin, wait_until

MODEL = "sonnet"


def costing(server, usd_real_tokens, usd_fake):
    """A magic word that makes a turn cost about the given amount on either kind of worker."""
    return f"[[cost:{usd_real_tokens}]]" if server["kind"] == "real" else f"[[cost:{usd_fake}]]"


def new_key(server, **fields):
    status, body = admin(server, "POST", "/key/generate", fields)
    assert status == 200, body
    return body["key"]


def client(server, key):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=key, max_retries=0, timeout=60)


def spend(server, key):
    status, body = admin(server, "GET", f"/key/info?key={key}")
    assert status == 200, body
    return body["info"]["spend"]


def test_a_key_is_stopped_once_its_budget_is_spent(server):
    key = new_key(server, max_budget=0.5, key_alias="budgeted")
    c = client(server, key)
    # 40,000 output tokens: about $0.60 at Sonnet's price.
    r = c.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "pricey " + costing(server, 40000, 0.6)}])
    assert r.choices[0].finish_reason == "stop"
    wait_until("spend recorded", lambda: spend(server, key) > 0.5, 10)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "more"}])
    assert e.value.code == "budget_exceeded"
    status, rows = admin(server, "GET", "/spend/keys")
    assert status == 200
    mine = next(r for r in rows if r["key_alias"] == "budgeted")
    assert mine["requests"] == 1 and mine["completion_tokens"] > 0


def test_a_turn_over_the_request_cap_ends_with_a_clear_error(server):
    key = new_key(server)
    c = client(server, key)
    # 400,000 output tokens: about $6, over max_cost_per_request = 5.0.
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "huge " + costing(server, 400000, 6)}])
    assert e.value.code == "cost_limit_exceeded"
    assert "max_cost_per_request" in str(e.value)
    wait_until("spend recorded", lambda: spend(server, key) > 5.0, 10)
    # Only that turn was stopped; the key (default budget $50) goes on.
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "cheap"}])
    assert "cheap" in r.choices[0].message.content


def test_scoped_keys_get_403_outside_their_models(server):
    c = client(server, new_key(server, models=["gpt-3.5-turbo"]))
    with pytest.raises(openai.PermissionDeniedError) as e:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_allowed"
    r = c.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "ok"}])
    assert "ok" in r.choices[0].message.content
