// The official `openai` Node client and the Vercel AI SDK (its default OpenAI provider, which
// speaks the Responses API) against a running claude-pool. Run by tests/python/test_node_clients.py
// with CP_URL, CP_KEY and CP_KIND (fake or real CLI workers); exits non-zero on a failed check.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const url = process.env.CP_URL;
const apiKey = process.env.CP_KEY;
const kind = process.env.CP_KIND;
const fakeApi = process.env.CP_FAKE_API;

// Turn number (fake CLI) or 1-based turn from the upstream message count (real CLI).
function turnOf(text) {
  if (kind === "fake") return Number(/\[turn=(\d+)\]/.exec(text)[1]);
  return (Number(/\[n=(\d+)\]/.exec(text)[1]) + 1) / 2;
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

check("openai: chat completion", async () => {
  const r = await client.chat.completions.create({
    model: "sonnet",
    messages: [{ role: "user", content: "hello from node" }],
  });
  assert.match(r.choices[0].message.content, /hello from node/);
  assert.equal(r.choices[0].finish_reason, "stop");
});

check("openai: streamed chat completion with usage", async () => {
  const stream = await client.chat.completions.create({
    model: "sonnet",
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: "stream from node" }],
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.match(text, /stream from node/);
  assert.ok(usage.completion_tokens > 0);
});

check("openai: max_tokens and stop", async () => {
  const r = await client.chat.completions.create({
    model: "sonnet",
    max_tokens: 5,
    messages: [{ role: "user", content: "long [[long]]" }],
  });
  assert.equal(r.choices[0].finish_reason, "length");
  assert.ok(r.choices[0].message.content.length <= 20);
});

check("openai: responses, continued by previous_response_id", async () => {
  const r1 = await client.responses.create({ model: "sonnet", input: "first response", instructions: "Be brief." });
  assert.equal(r1.status, "completed");
  assert.match(r1.output_text, /first response/);
  const r2 = await client.responses.create({ model: "sonnet", input: "second", previous_response_id: r1.id });
  assert.equal(turnOf(r2.output_text), 2, r2.output_text);
});

check("openai: streamed response", async () => {
  const stream = await client.responses.create({ model: "sonnet", input: "streamed response", stream: true });
  const types = [];
  let text = "";
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
  }
  assert.equal(types[0], "response.created");
  assert.equal(types.at(-1), "response.completed");
  assert.match(text, /streamed response/);
});

check("openai: temperature out of range is a 400 naming it", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "sonnet", temperature: 5, messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 400 && e.param === "temperature",
  );
});

check("openai: system and developer messages are the model's system prompt", async () => {
  const marker = Math.random().toString(36).slice(2, 10);
  const r = await client.chat.completions.create({
    model: "sonnet",
    messages: [
      { role: "system", content: `You are a pirate ${marker}.` },
      { role: "user", content: "ahoy" },
    ],
  });
  assert.match(r.choices[0].message.content, /ahoy/);
  assert.doesNotMatch(r.choices[0].message.content, new RegExp(marker), "not inlined into the user text");
  if (kind === "real") {
    const body = await (await fetch(`http://127.0.0.1:${fakeApi}/_last_request`)).json();
    const system = (body.system ?? []).map((b) => b.text ?? "").join("\n");
    assert.match(system, new RegExp(`You are a pirate ${marker}`));
  }
});

check("openai: a user's name reaches the model", async () => {
  const r = await client.chat.completions.create({
    model: "sonnet",
    messages: [{ role: "user", name: "alice", content: "hi there" }],
  });
  assert.match(r.choices[0].message.content, /alice: hi there/);
});

check("openai: a stream that fails before any content gets the real HTTP status", async () => {
  const magic = kind === "fake" ? "[[error:429]]" : "[[ratelimit]]";
  await assert.rejects(
    client.chat.completions.create({ model: "sonnet", stream: true, messages: [{ role: "user", content: magic }] }),
    (e) => e.status === 429 && e.headers?.get?.("retry-after") !== undefined,
  );
});

const provider = createOpenAI({ baseURL: `${url}/v1`, apiKey });

check("ai sdk: generateText with the default provider (Responses API)", async () => {
  const r = await generateText({ model: provider("sonnet"), prompt: "hello ai sdk", maxRetries: 0 });
  assert.match(r.text, /hello ai sdk/);
  assert.ok(r.usage.outputTokens > 0, JSON.stringify(r.usage));
  assert.equal(r.finishReason, "stop");
});

check("ai sdk: streamText with the default provider", async () => {
  const r = streamText({ model: provider("sonnet"), prompt: "stream ai sdk", maxRetries: 0 });
  let text = "";
  for await (const piece of r.textStream) text += piece;
  assert.match(text, /stream ai sdk/);
  assert.equal(await r.finishReason, "stop");
});

check("ai sdk: a conversation resent as messages stays on its worker", async () => {
  const system = "You are terse.";
  const first = await generateText({
    model: provider("sonnet"), system, maxRetries: 0,
    messages: [{ role: "user", content: "turn one" }],
  });
  const second = await generateText({
    model: provider("sonnet"), system, maxRetries: 0,
    messages: [
      { role: "user", content: "turn one" },
      { role: "assistant", content: first.text },
      { role: "user", content: "turn two" },
    ],
  });
  assert.match(second.text, /turn two/);
  assert.equal(turnOf(second.text), 2, second.text);
});

check("ai sdk: the chat completions provider", async () => {
  const r = await generateText({ model: provider.chat("sonnet"), prompt: "via chat", maxRetries: 0 });
  assert.match(r.text, /via chat/);
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${kind}: ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${kind}: ${name}\n${e?.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
