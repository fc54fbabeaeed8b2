// Function calling from the Vercel AI SDK (chat completions provider, `tools` with `execute`)
// and the official `openai` Node client against claude-pool with real CLI workers: each
// completes a two-step tool use. Run by tests/python/test_function_calling.py with CP_URL and
// CP_KEY; exits non-zero on a failed check.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, stepCountIs, tool } from "ai";
import { z } from "zod";

const url = process.env.CP_URL;
const apiKey = process.env.CP_KEY;
const provider = createOpenAI({ baseURL: `${url}/v1`, apiKey });
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

const weather = tool({
  description: "Current weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `${city}: sunny, 21 C`,
});

check("ai sdk: generateText runs a tool and answers with its result", async () => {
  const r = await generateText({
    model: provider.chat("sonnet"),
    maxRetries: 0,
    tools: { get_weather: weather },
    stopWhen: stepCountIs(3),
    prompt: 'Weather in Paris? [[call:get_weather {"city": "Paris"}]]',
  });
  assert.equal(r.steps.length, 2, JSON.stringify(r.steps.map((s) => s.finishReason)));
  assert.equal(r.steps[0].finishReason, "tool-calls");
  assert.deepEqual(r.steps[0].toolCalls[0].input, { city: "Paris" });
  assert.match(r.text, /Paris: sunny, 21 C/);
  assert.equal(r.finishReason, "stop");
});

check("ai sdk: streamText streams the tool call, then the answer", async () => {
  const r = streamText({
    model: provider.chat("sonnet"),
    maxRetries: 0,
    tools: { get_weather: weather },
    stopWhen: stepCountIs(3),
    prompt: 'Weather in Oslo? [[call:get_weather {"city": "Oslo"}]]',
  });
  let text = "";
  for await (const piece of r.textStream) text += piece;
  assert.match(text, /Oslo: sunny, 21 C/);
  assert.equal((await r.steps).length, 2);
});

check("openai node: tool_calls, then the tool message continues the turn", async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
  const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } } }];
  const messages = [{ role: "user", content: 'look it up [[call:lookup {"q": "rust"}]]' }];
  const first = await client.chat.completions.create({ model: "sonnet", messages, tools });
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "lookup");
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "a language" });
  const second = await client.chat.completions.create({ model: "sonnet", messages, tools });
  assert.match(second.choices[0].message.content, /=a language/);
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
