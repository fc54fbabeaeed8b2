// Anthropic's Messages API from Node: the official `@anthropic-ai/sdk` client (create, stream,
// a resent conversation going on) and the Vercel AI SDK's Anthropic provider (`generateText`,
// `streamText`, a tool call run with `tools`) against a running claude-pool. Run by
// tests/python/test_node_clients.py with CP_URL, CP_KEY and CP_KIND (fake or real CLI workers);
// exits non-zero on a failed check.
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { createAnthropic } from "@ai-sdk/anthropic";
import { generateText, streamText, stepCountIs, tool } from "ai";
import { z } from "zod";

const url = process.env.CP_URL;
const apiKey = process.env.CP_KEY;
const kind = process.env.CP_KIND;

// Turn number (fake CLI) or 1-based turn from the upstream message count (real CLI).
function turnOf(text) {
  if (kind === "fake") return Number(/\[turn=(\d+)\]/.exec(text)[1]);
  return (Number(/\[n=(\d+)\]/.exec(text)[1]) + 1) / 2;
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

const client = new Anthropic({ baseURL: url, apiKey, maxRetries: 0, timeout: 120_000 });
const provider = createAnthropic({ baseURL: `${url}/v1`, apiKey });

check("anthropic sdk: messages.create", async () => {
  const r = await client.messages.create({
    model: "sonnet",
    max_tokens: 1024,
    messages: [{ role: "user", content: "hello from node" }],
  });
  assert.equal(r.type, "message");
  assert.match(r.id, /^msg_/);
  assert.equal(r.content[0].type, "text");
  assert.match(r.content[0].text, /^echo: hello from node/);
  assert.equal(turnOf(r.content[0].text), 1);
  assert.equal(r.stop_reason, "end_turn");
  assert.ok(r.usage.output_tokens > 0);
});

check("anthropic sdk: messages.stream, then the conversation goes on", async () => {
  const messages = [{ role: "user", content: "stream from node [[long]]" }];
  const stream = client.messages.stream({ model: "sonnet", max_tokens: 8192, messages });
  const pieces = [];
  stream.on("text", (t) => pieces.push(t));
  const final = await stream.finalMessage();
  assert.ok(pieces.length > 1, "text in pieces");
  assert.equal(pieces.join(""), final.content[0].text);
  assert.match(final.content[0].text, /word399/);
  assert.equal(final.stop_reason, "end_turn");
  messages.push({ role: "assistant", content: final.content }, { role: "user", content: "and then?" });
  const next = await client.messages.create({ model: "sonnet", max_tokens: 1024, messages });
  assert.match(next.content[0].text, /^echo: and then\?/);
  assert.equal(turnOf(next.content[0].text), 2, next.content[0].text);
});

check("anthropic sdk: a bad key is an AuthenticationError", async () => {
  const bad = new Anthropic({ baseURL: url, apiKey: "sk-not-a-key", maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model: "sonnet", max_tokens: 16, messages: [{ role: "user", content: "x" }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.error?.error?.type === "authentication_error",
  );
});

check("ai sdk anthropic: generateText", async () => {
  const r = await generateText({
    model: provider("sonnet"),
    maxRetries: 0,
    maxOutputTokens: 1024,
    prompt: "generate from the ai sdk",
  });
  assert.match(r.text, /^echo: generate from the ai sdk/);
  assert.equal(r.finishReason, "stop");
  assert.ok(r.usage.outputTokens > 0);
});

check("ai sdk anthropic: streamText", async () => {
  const r = streamText({
    model: provider("sonnet"),
    maxRetries: 0,
    maxOutputTokens: 8192,
    prompt: "stream from the ai sdk [[long]]",
  });
  const pieces = [];
  for await (const piece of r.textStream) pieces.push(piece);
  const text = pieces.join("");
  assert.ok(pieces.length > 1);
  assert.match(text, /^echo: stream from the ai sdk/);
  assert.match(text, /word399/);
  assert.equal(await r.finishReason, "stop");
});

const weather = tool({
  description: "Current weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `${city}: sunny, 21 C`,
});

check("ai sdk anthropic: generateText runs a tool and answers with its result", async () => {
  const r = await generateText({
    model: provider("sonnet"),
    maxRetries: 0,
    maxOutputTokens: 1024,
    tools: { get_weather: weather },
    stopWhen: stepCountIs(3),
    prompt: 'Weather in Paris? [[call:get_weather {"city": "Paris"}]]',
  });
  assert.equal(r.steps.length, 2, JSON.stringify(r.steps.map((s) => s.finishReason)));
  assert.equal(r.steps[0].finishReason, "tool-calls");
  assert.equal(r.steps[0].toolCalls[0].toolName, "get_weather");
  assert.deepEqual(r.steps[0].toolCalls[0].input, { city: "Paris" });
  assert.match(r.text, /Paris: sunny, 21 C/);
  assert.equal(r.finishReason, "stop");
});

check("ai sdk anthropic: streamText streams the tool call, then the answer", async () => {
  const r = streamText({
    model: provider("sonnet"),
    maxRetries: 0,
    maxOutputTokens: 1024,
    tools: { get_weather: weather },
    stopWhen: stepCountIs(3),
    prompt: 'Weather in Oslo? [[call:get_weather {"city": "Oslo"}]]',
  });
  let text = "";
  for await (const piece of r.textStream) text += piece;
  assert.match(text, /Oslo: sunny, 21 C/);
  assert.equal((await r.steps).length, 2);
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n${e?.stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
