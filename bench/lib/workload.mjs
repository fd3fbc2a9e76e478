// What is sent: realistic chat requests whose `x_sim` field scripts the
// simulator's answer, so every peer sees and forwards the same bytes.
import fs from 'node:fs';
import path from 'node:path';

// ~700 bytes of reply text: with the OpenAI envelope a ~1 KB chat.completion.
export const REPLY_TEXT =
  'The notes describe three changes to the billing service. First, invoices are now generated ' +
  'by a nightly batch job instead of on demand, which removes the timeouts customers saw at the ' +
  'end of each month and lets the team retry failed runs without manual work. Second, the tax ' +
  'calculation moved into its own module with unit tests for every supported region, so a rule ' +
  'change no longer needs a full release of the service. Third, the old PDF renderer was replaced ' +
  'by an HTML template that support staff can edit themselves. The main risk listed is the ' +
  'migration of historical invoices, planned for the second week of the quarter, with a rollback ' +
  'plan that keeps both renderers running side by side until the numbers agree.';

export const BEHAVIOURS = {
  fast: { text: REPLY_TEXT },
  d20: { text: REPLY_TEXT, headers_delay_ms: 20 },
  d1s: { text: REPLY_TEXT, headers_delay_ms: 1000 },
  stream: { text: REPLY_TEXT, chunks: 64, chunk_delay_ms: 20 },
  // 250 pieces x 4 = 1,000 content events, sent as fast as the socket takes them
  burst: { text: REPLY_TEXT, chunks: 250, repeat: 4 },
  smokeStream: { text: REPLY_TEXT, chunks: 4 },
};

const FILLER =
  'Meeting notes, section %: the team reviewed the quarterly numbers, the open incidents and the ' +
  'migration plan, and agreed on owners and dates for each follow-up item before the next review. ';

function filler(bytes) {
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += FILLER.replace('%', String(i));
  return s.slice(0, bytes);
}

// The request body; the literal NONCE becomes a per-request counter (yr-load).
export function chatBody(behaviour, { stream = false, padBytes = 0 } = {}) {
  const user = `Request NONCE: summarise these notes in one paragraph for the weekly report.` +
    (padBytes ? `\n\n${filler(padBytes)}` : '');
  const body = {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You are a concise assistant for an engineering team. Answer in plain prose.' },
      { role: 'user', content: user },
    ],
    temperature: 0.2,
    max_tokens: 1024,
  };
  if (stream) body.stream = true;
  body.x_sim = behaviour;
  return JSON.stringify(body);
}

// Writes every body the scenarios use into `dir`; returns their paths.
export function writeBodies(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const files = {};
  const put = (name, text) => {
    files[name] = path.join(dir, `${name}.json`);
    fs.writeFileSync(files[name], text);
  };
  put('fast', chatBody(BEHAVIOURS.fast));
  put('d20', chatBody(BEHAVIOURS.d20));
  put('d1s', chatBody(BEHAVIOURS.d1s));
  put('stream', chatBody(BEHAVIOURS.stream, { stream: true }));
  put('burst', chatBody(BEHAVIOURS.burst, { stream: true }));
  put('big', chatBody(BEHAVIOURS.fast, { padBytes: 100 * 1024 }));
  return files;
}
