// The simulator's Bedrock dialect on its own, signed by an independent SigV4
// implementation (node:crypto, written from AWS's documentation): a correct
// signature is accepted — so the simulator's check (the gateway's sigv4.c)
// agrees with a second implementation — and every way of getting it wrong
// is a 403 with the service's error type in x-amzn-ErrorType. Then the
// validation a gateway must pass and the eventstream framing of a stream.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { startSim } from './lib.mjs';

const AK = 'AKIDNODE', SECRET = 'node/secret+KEY';
let sim;
before(async () => { sim = await startSim(['--aws-credentials', `${AK}:${SECRET}`]); });
after(async () => { await sim.stop(); });
beforeEach(async () => { await sim.reset(); });

const sha = (s) => createHash('sha256').update(s).digest('hex');
const hmac = (k, s) => createHmac('sha256', k).update(s).digest();
// RFC 3986 encoding of a path segment, as SigV4 wants it.
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function sign({ path, body, ak = AK, secret = SECRET, date = new Date() }) {
  const amz = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amz.slice(0, 8);
  const host = `127.0.0.1:${sim.port}`;
  // the canonical URI encodes every segment of the path as sent once more
  const curi = path.split('/').map(enc).join('/');
  const creq = ['POST', curi, '', `content-type:application/json\nhost:${host}\nx-amz-date:${amz}\n`,
    'content-type;host;x-amz-date', sha(body)].join('\n');
  const scope = `${day}/us-east-1/bedrock/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amz, scope, sha(creq)].join('\n');
  let k = hmac('AWS4' + secret, day);
  for (const p of ['us-east-1', 'bedrock', 'aws4_request']) k = hmac(k, p);
  const sig = createHmac('sha256', k).update(sts).digest('hex');
  return { 'content-type': 'application/json', 'x-amz-date': amz,
    authorization: `AWS4-HMAC-SHA256 Credential=${ak}/${scope}, SignedHeaders=content-type;host;x-amz-date, Signature=${sig}` };
}

const MODEL_PATH = `/model/${enc('us.anthropic.claude-3-5-haiku-20241022-v1:0')}/converse`;
const ok = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Reply with exactly: signed' }] }] });
const post = (path, body, headers) => fetch(sim.base + path, { method: 'POST', body, headers });

test('a signature from a second SigV4 implementation is accepted (the model id signed as %253A)', async () => {
  const r = await post(MODEL_PATH, ok, sign({ path: MODEL_PATH, body: ok }));
  assert.equal(r.status, 200, await r.clone().text());
  const j = await r.json();
  assert.deepEqual(j.output.message.content, [{ text: 'signed' }]);
  assert.equal(j.stopReason, 'end_turn');
  assert.match(r.headers.get('x-amzn-requestid'), /^req_/);
});

test('every wrong signature is a 403 with the service\'s error type', async () => {
  const cases = [
    ['no Authorization', {}, 'AccessDeniedException'],
    ['another access key', sign({ path: MODEL_PATH, body: ok, ak: 'AKIDOTHER' }), 'UnrecognizedClientException'],
    ['another secret', sign({ path: MODEL_PATH, body: ok, secret: 'wrong' }), 'InvalidSignatureException'],
    ['a body changed after signing', sign({ path: MODEL_PATH, body: ok + ' ' }), 'InvalidSignatureException'],
    ['signed for another path', sign({ path: MODEL_PATH.replace('%3A', ':'), body: ok }), 'InvalidSignatureException'],
    ['signed an hour ago', sign({ path: MODEL_PATH, body: ok, date: new Date(Date.now() - 3600e3) }), 'InvalidSignatureException'],
  ];
  for (const [what, headers, type] of cases) {
    const r = await post(MODEL_PATH, ok, { 'content-type': 'application/json', ...headers });
    assert.equal(r.status, 403, what);
    assert.equal(r.headers.get('x-amzn-errortype'), `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`, what);
    assert.ok(typeof (await r.json()).message === 'string', what);
  }
});

test('validation: what a Converse client gets wrong is a 400 ValidationException', async () => {
  const bad = [
    [{ messages: [{ role: 'user', content: [{ text: 'a' }] }, { role: 'user', content: [{ text: 'b' }] }] }, /alternate/],
    [{ messages: [{ role: 'user', content: [{ text: ' \n' }] }] }, /is blank/],
    [{ messages: [{ role: 'user', content: [{ text: 'q' }] }, { role: 'assistant', content: [{ toolUse: { toolUseId: 't', name: 'f', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 't', content: [{ text: 'r' }] } }] }] }, /toolConfig field must be defined/],
    [{ messages: [{ role: 'user', content: [{ text: 'q' }] }, { role: 'assistant', content: [{ toolUse: { toolUseId: 't', name: 'f', input: '' } }] }],
      toolConfig: { tools: [{ toolSpec: { name: 'f', inputSchema: { json: { type: 'object' } } } }] } }, /must be a JSON object/],
    [{ messages: [{ role: 'user', content: [{ text: 'q' }] }], n: 2 }, /extraneous key \[n\]/],
  ];
  for (const [body, msg] of bad) {
    const text = JSON.stringify(body);
    const r = await post(MODEL_PATH, text, sign({ path: MODEL_PATH, body: text }));
    assert.equal(r.status, 400, text);
    assert.match(r.headers.get('x-amzn-errortype'), /^ValidationException:/);
    assert.match((await r.json()).message, msg);
  }
});

// Splits an eventstream body into {headers, payload} (lengths checked; the
// CRCs are the unit tests' business).
function frames(buf) {
  const out = [];
  for (let off = 0; off < buf.length;) {
    const total = buf.readUInt32BE(off), hlen = buf.readUInt32BE(off + 4);
    assert.ok(total >= 16 && off + total <= buf.length);
    const headers = {};
    for (let p = off + 12; p < off + 12 + hlen;) {
      const n = buf[p]; const name = buf.toString('utf8', p + 1, p + 1 + n); p += 1 + n;
      assert.equal(buf[p], 7, 'string headers'); const l = buf.readUInt16BE(p + 1);
      headers[name] = buf.toString('utf8', p + 3, p + 3 + l); p += 3 + l;
    }
    out.push({ headers, payload: JSON.parse(buf.toString('utf8', off + 12 + hlen, off + total - 4)) });
    off += total;
  }
  return out;
}

test('converse-stream: eventstream messages in order, and a scripted exception frame', async () => {
  const path = MODEL_PATH.replace(/converse$/, 'converse-stream');
  let r = await post(path, ok, sign({ path, body: ok }));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.amazon.eventstream');
  let fs = frames(Buffer.from(await r.arrayBuffer()));
  assert.deepEqual(fs.map((f) => f.headers[':event-type']), ['messageStart', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata']);
  assert.equal(fs[1].payload.delta.text, 'signed');
  assert.equal(fs[3].payload.stopReason, 'end_turn');
  assert.ok(fs[4].payload.usage.inputTokens > 0);
  await sim.script([{ stream_error: 'throttlingException', stream_error_after: 1 }]);
  r = await post(path, ok, sign({ path, body: ok }));
  fs = frames(Buffer.from(await r.arrayBuffer()));
  assert.equal(fs.length, 2);
  assert.deepEqual(fs[1].headers, { ':exception-type': 'throttlingException', ':content-type': 'application/json', ':message-type': 'exception' });
  assert.match(fs[1].payload.message, /Too many requests/);
});
