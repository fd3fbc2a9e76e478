// Every error a client can cause gets the OpenAI error envelope, the right
// status and an x-request-id that the message repeats.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startGateway, config, chat, rawRequest, readUntil, MASTER_KEY } from './lib.mjs';

let sim, gw;
before(async () => {
  sim = await startSim();
  gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { max_body_bytes: 65536 },
  }));
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

function assertEnvelope(r, status, { param, code, type } = {}) {
  assert.equal(r.status, status, r.text);
  const id = r.headers.get('x-request-id');
  assert.match(id, /^req_/);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.ok(r.json.error.message.includes(id), 'message quotes the request id');
  if (param !== undefined) assert.equal(r.json.error.param, param);
  if (code !== undefined) assert.equal(r.json.error.code, code);
  if (type !== undefined) assert.equal(r.json.error.type, type);
}

const msgs = [{ role: 'user', content: 'hi' }];
const bad = [
  ['malformed JSON', '{"model": "gpt-4o", "messages": [', { code: 'invalid_json' }],
  ['not an object', '[1,2]', {}],
  ['missing model', { messages: msgs }, { param: 'model' }],
  ['model not a string', { model: 42, messages: msgs }, { param: 'model' }],
  ['missing messages', { model: 'gpt-4o' }, { param: 'messages' }],
  ['messages not an array', { model: 'gpt-4o', messages: 'hi' }, { param: 'messages' }],
  ['empty messages', { model: 'gpt-4o', messages: [] }, { param: 'messages' }],
  ['unknown role', { model: 'gpt-4o', messages: [{ role: 'wizard', content: 'x' }] }, { param: 'messages[0].role' }],
  ['missing role', { model: 'gpt-4o', messages: [{ content: 'x' }] }, { param: 'messages[0].role' }],
  ['content of the wrong type', { model: 'gpt-4o', messages: [{ role: 'user', content: 5 }] }, { param: 'messages[0].content' }],
  ['stream not a boolean', { model: 'gpt-4o', messages: msgs, stream: 'yes' }, { param: 'stream' }],
  ['temperature not a number', { model: 'gpt-4o', messages: msgs, temperature: 'hot' }, { param: 'temperature' }],
  ['max_tokens zero', { model: 'gpt-4o', messages: msgs, max_tokens: 0 }, { param: 'max_tokens' }],
  ['duplicate keys', '{"model":"gpt-4o","model":"other","messages":[{"role":"user","content":"x"}]}', { code: 'invalid_json' }],
  ['unknown model', { model: 'no-such-model', messages: msgs }, { param: 'model', code: 'model_not_found' }],
];

for (const [name, body, expect] of bad) {
  test(`400: ${name}`, async () => {
    const r = await chat(gw, body);
    assertEnvelope(r, 400, { type: 'invalid_request_error', ...expect });
  });
}

test('nothing invalid reaches the provider', async () => {
  assert.equal((await sim.stats()).requests, 0);
});

test('401: missing, malformed and wrong keys', async () => {
  assertEnvelope(await chat(gw, { model: 'gpt-4o', messages: msgs }, { key: null }), 401, { code: 'invalid_api_key' });
  assertEnvelope(await chat(gw, { model: 'gpt-4o', messages: msgs }, { key: 'yr-not-a-real-key' }), 401);
  const r = await chat(gw, { model: 'gpt-4o', messages: msgs }, { key: null, headers: { authorization: `Basic ${MASTER_KEY}` } });
  assertEnvelope(r, 401);
  assert.ok(!r.text.includes(MASTER_KEY), 'the key is never echoed');
});

test('401 comes before body validation', async () => {
  assertEnvelope(await chat(gw, 'garbage', { key: 'wrong' }), 401);
});

test('413: body over server.max_body_bytes', async () => {
  const r = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(70000) }] });
  assertEnvelope(r, 413, { code: 'request_too_large' });
});

test('413 also for a chunked body that grows past the limit', async () => {
  const sock = rawRequest(gw.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const chunk = 'a'.repeat(16384);
  for (let i = 0; i < 5; i++) sock.write(`${(chunk.length).toString(16)}\r\n${chunk}\r\n`);
  const resp = await readUntil(sock, (b) => b.includes('}}'));
  assert.match(resp, /^HTTP\/1\.1 413 /);
  assert.match(resp, /x-request-id: req_/);
  sock.destroy();
});

test('404 and 405 in the same envelope', async () => {
  let r = await fetch(`${gw.base}/v1/nothing-here`);
  r = { status: r.status, headers: r.headers, text: await r.text() };
  r.json = JSON.parse(r.text);
  assertEnvelope(r, 404, { code: 'not_found' });
  r = await fetch(`${gw.url}/chat/completions`);
  r = { status: r.status, headers: r.headers, text: await r.text() };
  r.json = JSON.parse(r.text);
  assertEnvelope(r, 405);
});

test('malformed HTTP gets a 400 envelope', async () => {
  const sock = rawRequest(gw.port, 'THIS IS NOT HTTP\r\n\r\n');
  const resp = await readUntil(sock, (b) => b.includes('}}'));
  assert.match(resp, /^HTTP\/1\.1 400 /);
  assert.match(resp, /"type":"invalid_request_error"/);
  sock.destroy();
});

test('GET /v1/models lists the configured models for a valid key', async () => {
  const r = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.object, 'list');
  assert.deepEqual(j.data.map((m) => m.id), ['gpt-4o']);
  assert.equal(j.data[0].object, 'model');
  assert.equal((await fetch(`${gw.url}/models`)).status, 401);
});

test('/health answers 200 with a request id', async () => {
  const r = await fetch(`${gw.base}/health`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
  assert.ok(r.headers.get('x-request-id'));
});

test('the gateway survives a burst of garbage and still serves', async () => {
  const inputs = ['\x00\x01\x02', 'GET / HTTP/9.9\r\n\r\n', `POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n`,
    'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n', `GET /${'a'.repeat(40000)} HTTP/1.1\r\n\r\n`];
  await Promise.all(inputs.map(async (inp) => {
    const s = rawRequest(gw.port, inp);
    await readUntil(s, () => false, 3000).catch(() => {});
    s.destroy();
  }));
  const r = await chat(gw, { model: 'gpt-4o', messages: msgs });
  assert.equal(r.status, 200);
});
