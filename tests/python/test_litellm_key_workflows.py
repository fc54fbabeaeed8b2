"""The LiteLLM client-key workflow, step by step as its guide writes it (`requests` against
`/key/*` and `/spend/*`, the key then used with the `openai` client), on the fake and the
real CLI."""
import time

import openai
import pytest
import requests

from conftest import MASTER

MODEL = "claude-sonnet-4-5-20250929"
ADMIN = {"Authorization": f"Bearer {MASTER}"}


def client(server, key):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=key, max_retries=0, timeout=60)


def test_generate_use_inspect_and_delete_a_key_like_the_litellm_guide(server):
    url = server["url"]
    # Generate: integers where people write integers.
    r = requests.post(f"{url}/key/generate", headers=ADMIN, json={
        "models": [MODEL, "claude-3-opus-20240229"], "max_budget": 10, "duration": "30d",
        "rpm_limit": 100, "tpm_limit": 1000000, "max_parallel_requests": 4,
        "budget_duration": "1mo", "tags": ["guide"], "key_alias": "guide-key",
        "metadata": {"user": "ishaan"}})
    assert r.status_code == 200, r.text
    made = r.json()
    key = made["key"]
    assert made["max_budget"] == 10 and made["budget_duration"] == "1mo"
    assert made["budget_reset_at"]

    # The key sees exactly its models.
    c = client(server, key)
    assert sorted(m.id for m in c.models.list()) == sorted([MODEL, "claude-3-opus-20240229"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        c.chat.completions.create(model="haiku", messages=[{"role": "user", "content": "x"}])
    assert "key not allowed to access model. This key can only access models=" in str(e.value)

    # A request with LiteLLM's metadata.tags; the limit headers as the arktnld wiki shows them.
    raw = c.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "tagged request"}],
        extra_body={"metadata": {"tags": ["checkout"]}})
    completion = raw.parse()
    assert "tagged request" in completion.choices[0].message.content
    reset = int(raw.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 61, reset
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    assert raw.headers["x-ratelimit-limit-tokens"] == "1000000"

    # /key/info without a key lists keys; with one, shows it.
    listing = requests.get(f"{url}/key/info", headers=ADMIN, params={"key_alias": "guide-key"})
    assert listing.status_code == 200 and listing.json()["total_count"] == 1
    info = requests.get(f"{url}/key/info", headers=ADMIN, params={"key": key}).json()["info"]
    assert info["key_alias"] == "guide-key" and info["tags"] == ["guide"]

    # Spend by tag and the spend log (the record is written within moments).
    deadline = time.time() + 10
    while True:
        logs = requests.get(f"{url}/spend/logs", headers=ADMIN, params={"api_key": key})
        assert logs.status_code == 200
        if logs.json():
            break
        assert time.time() < deadline, "no spend log entry"
        time.sleep(0.1)
    entry = logs.json()[0]
    assert entry["request_id"] == completion.id
    assert entry["request_tags"] == ["guide", "checkout"]
    tags = {t["individual_request_tag"]: t for t in
            requests.get(f"{url}/spend/tags", headers=ADMIN).json()}
    assert tags["checkout"]["log_count"] >= 1 and tags["checkout"]["total_spend"] > 0

    # Update, block, unblock, regenerate.
    r = requests.post(f"{url}/key/update", headers=ADMIN, json={"key": key, "max_budget": 20})
    assert r.status_code == 200 and r.json()["max_budget"] == 20
    assert requests.post(f"{url}/key/block", headers=ADMIN, json={"key": key}).json()["blocked"]
    with pytest.raises(openai.AuthenticationError) as e:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "blocked"}])
    assert "Key is blocked" in str(e.value)
    requests.post(f"{url}/key/unblock", headers=ADMIN, json={"key": key}).raise_for_status()
    regenerated = requests.post(f"{url}/key/regenerate", headers=ADMIN, json={"key": key}).json()
    new_key = regenerated["key"]
    assert regenerated["max_budget"] == 20 and new_key != key
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "old"}])
    r = client(server, new_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "new key"}])
    assert "new key" in r.choices[0].message.content

    # curl -X DELETE /key/delete -d '{"keys": [...]}'
    r = requests.delete(f"{url}/key/delete", headers=ADMIN, json={"keys": [new_key]})
    assert r.status_code == 200 and r.json()["deleted_keys"] == [new_key]
    with pytest.raises(openai.AuthenticationError):
        client(server, new_key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "deleted"}])


def test_every_429_carries_retry_after(server):
    url = server["url"]
    key = requests.post(f"{url}/key/generate", headers=ADMIN,
                        json={"rpm_limit": 1}).json()["key"]
    c = client(server, key)
    c.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "one"}])
    r = requests.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "sonnet", "messages": [{"role": "user", "content": "two"}]})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert int(r.headers["X-RateLimit-Reset"]) > time.time()
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
