// The OpenAI Responses API (POST /v1/responses) with the official `openai`
// SDK as the client, translated over an OpenAI-compatible route and an
// Anthropic route through the typed event stream.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

let oai, anth, gw, client;
before(async () => {
  oai = await startSim();
  anth = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oai.url },
      anthropic: { kind: 'anthropic', base_url: anth.base, api_key: 'sk-ant-x' },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
    ],
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await oai.stop(); await anth.stop(); gw.cleanup(); });
beforeEach(async () => { await oai.reset(); await anth.reset(); await gw.resetRoutes(); });

const weather = [{ type: 'function', name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

for (const model of ['gpt-4o', 'claude']) {
  test(`${model}: responses.create with a string input and instructions`, async () => {
    const r = await client.responses.create({ model, instructions: 'Be brief.', input: 'Reply with exactly: hello there' });
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'hello there');
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].content[0].type, 'output_text');
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assert.equal(r.instructions, 'Be brief.');
    const sim = model === 'claude' ? anth : oai;
    const [req] = await sim.requests();
    if (model === 'claude') assert.equal(req.body.system, 'Be brief.');
    else assert.deepEqual(req.body.messages[0], { role: 'system', content: 'Be brief.' });
  });

  test(`${model}: responses.stream delivers the typed events in order`, async () => {
    const stream = client.responses.stream({ model, input: [{ role: 'user', content: [{ type: 'input_text', text: 'Reply with exactly: one two three' }] }] });
    const types = [];
    let deltas = '';
    let last = -1;
    for await (const ev of stream) {
      types.push(ev.type);
      assert.ok(ev.sequence_number > last, 'sequence numbers increase');
      last = ev.sequence_number;
      if (ev.type === 'response.output_text.delta') deltas += ev.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(deltas, 'one two three');
    assert.equal(final.output_text, 'one two three');
    assert.equal(final.status, 'completed');
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
  });

  test(`${model}: a function-call loop carried by the client`, async () => {
    const first = await client.responses.create({ model, input: 'Weather in Paris?', tools: weather, tool_choice: 'required' });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, 'get_weather');
    assert.ok(call.call_id);
    const second = await client.responses.create({
      model, tools: weather,
      input: [{ role: 'user', content: 'Weather in Paris?' }, call,
        { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 21}' },
        { role: 'user', content: 'Reply with exactly: it is 21' }],
    });
    assert.equal(second.output_text, 'it is 21');
    const sim = model === 'claude' ? anth : oai;
    const reqs = await sim.requests();
    const body = reqs.at(-1).body;
    const text = JSON.stringify(body.messages);
    assert.ok(text.includes(call.call_id), 'the call and its output reach the provider');
    assert.ok(text.includes('temp_c'));
  });

  test(`${model}: max_output_tokens cut -> incomplete with the reason`, async () => {
    const r = await client.responses.create({ model, input: 'Reply with exactly: a b c d e f g', max_output_tokens: 2 });
    assert.equal(r.status, 'incomplete');
    assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  });
}

test('a streamed function call: arguments as deltas, then done', async () => {
  await oai.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }]);
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'Weather in Oslo?', tools: weather });
  let args = '';
  const seen = new Set();
  for await (const ev of stream) {
    seen.add(ev.type);
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
  }
  const final = await stream.finalResponse();
  assert.deepEqual(JSON.parse(args), { city: 'Oslo' });
  assert.ok(seen.has('response.function_call_arguments.done'));
  const call = final.output.find((o) => o.type === 'function_call');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
});

test('reasoning on an Anthropic route comes back as a reasoning item', async () => {
  const r = await client.responses.create({ model: 'claude', input: 'Reply with exactly: done', reasoning: { effort: 'low' } });
  const rs = r.output.find((o) => o.type === 'reasoning');
  assert.ok(rs, JSON.stringify(r.output));
  assert.match(rs.summary[0].text, /Thinking about/);
  assert.equal(r.output_text, 'done');
  const [req] = await anth.requests();
  assert.equal(req.body.thinking.type, 'enabled');
});

test('text.format json_schema reaches the provider as response_format', async () => {
  const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false };
  await client.responses.create({ model: 'gpt-4o', input: 'x', text: { format: { type: 'json_schema', name: 'ans', schema, strict: true } } });
  const [req] = await oai.requests();
  assert.deepEqual(req.body.response_format, { type: 'json_schema', json_schema: { name: 'ans', schema, strict: true } });
});

test('errors: unknown model, bad input, previous_response_id; a stream broken upstream ends in response.failed', async () => {
  await assert.rejects(client.responses.create({ model: 'nope', input: 'x' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'model');
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: [{ role: 'wizard', content: 'x' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input[0].role');
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: 'x', previous_response_id: 'resp_x' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id');
  await oai.script([{ chunks: 5, cut_after: 3, text: 'one two three four five' }]);
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'x' });
  const types = [];
  let failed;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.failed') failed = ev.response;
  }
  assert.ok(types.includes('response.output_text.delta'));
  assert.equal(types.at(-1), 'response.failed');
  assert.ok(!types.includes('response.completed'), 'never a silent completed');
  assert.equal(failed.status, 'failed');
  assert.match(failed.error.message, /mid-stream|before it was complete|broke/);
  const fr = await stream.finalResponse().catch((e) => ({ status: 'failed', thrown: e }));
  assert.notEqual(fr.status, 'completed');
});
