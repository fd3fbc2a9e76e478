// Contention-independent cost of yourouter (bench/profile): what the gateway
// does per request and per streamed event, counted rather than timed, so the
// figures hold on a busy machine.
//
//   node bench/lib/profile.mjs --build-dir=DIR [--n=N] [--c=C] [--events=E] [--streams=S]
//                              [--only=syscalls,allocs,rss] [--upstream=sim|fast|tls|h2]
//
//   syscalls/request     strace -c -f on the gateway over N non-streamed requests
//   allocs/request       malloc+calloc+realloc (and free) per request: the
//                        LD_PRELOAD counter bench/tools/alloc-count.c, the same
//                        gateway run with and without the N requests
//   per streamed event   the same over N/10 streams of E content chunks with no
//                        delay (the "burst" behaviour)
//   RSS per 1,000 streams  S concurrent 64-chunk streams (20 ms apart): peak
//                        gateway RSS minus its idle RSS, per 1,000; with
//                        --upstream=fast|tls from yr-upstream's stream mode
//
// Prints one JSON object. The upstream is the simulator (it does not need to
// be fast: nothing here is a rate).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh, log, sleep, startProcess, waitForOutput, stopProcess, killAll, rssKb, runLoad } from './util.mjs';
import { chatBody, BEHAVIOURS } from './workload.mjs';
import { makePki } from './overhead.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const buildDir = path.resolve(root, opt('build-dir', 'build-release'));
const N = Number(opt('n', 20000));
const C = Number(opt('c', 10));
const EVENTS = Number(opt('events', 250));
const STREAMS = Number(opt('streams', 1000));
const ONLY = new Set(opt('only', 'syscalls,allocs,rss').split(','));
// the upstream of the non-streamed requests: the simulator, or yr-upstream
// over plain HTTP (fast) or TLS with a CA made for the run (tls; h2: the
// same, speaking HTTP/2 to a client that offers it, as providers do)
const UPSTREAM = opt('upstream', 'sim');
const LOAD = path.join(buildDir, 'bench', 'yr-load');
const PRELOAD = path.join(buildDir, 'bench', 'libyr-alloc-count.so');
fs.mkdirSync(path.join(root, 'bench', 'out'), { recursive: true });
const work = fs.mkdtempSync(path.join(root, 'bench', 'out', 'profile-'));
process.on('exit', killAll);

const bodies = {
  fast: path.join(work, 'fast.json'),
  burst: path.join(work, 'burst.json'),
  stream: path.join(work, 'stream.json'),
};
fs.writeFileSync(bodies.fast, chatBody(BEHAVIOURS.fast));
fs.writeFileSync(bodies.burst, chatBody({ text: BEHAVIOURS.fast.text, chunks: EVENTS }, { stream: true }));
fs.writeFileSync(bodies.stream, chatBody(BEHAVIOURS.stream, { stream: true }));

async function startSim() {
  const child = startProcess([path.join(buildDir, 'yourouter-sim'), '--no-record', '--quiet', '--listen', '127.0.0.1:0']);
  const m = await waitForOutput(child, /listening on 127\.0\.0\.1:(\d+)/, 10000);
  return { child, port: Number(m[1]) };
}

async function startGateway(up, env = {}) {
  if (typeof up === 'number') up = { port: up };
  const dir = fs.mkdtempSync(path.join(work, 'gw-'));
  const cfg = path.join(dir, 'yourouter.yaml');
  fs.writeFileSync(cfg, [
    'server:', '  listen: 127.0.0.1:0', '  master_key: bench-master-key-0123456789', '  workers: 1',
    '  log_level: info', 'storage:', `  url: "sqlite://${dir}/yourouter.db"`, 'providers:', '  sim:',
    '    kind: openai', `    base_url: ${up.ca ? 'https' : 'http'}://127.0.0.1:${up.port}/v1`, '    api_key: dummy',
    ...(up.ca ? ['    tls:', `      ca_file: ${up.ca}`] : []),
    'models:', '  - id: gpt-4o', '    routes:', '      - provider: sim', '',
  ].join('\n'));
  const child = startProcess([path.join(buildDir, 'yourouter'), 'serve', '--config', cfg], { env, cwd: dir });
  const m = await waitForOutput(child, /listening on [^:]+:(\d+)/, 10000);
  return { child, port: Number(m[1]), dir };
}

function load(port, { n, c, body, stream = false, extra = [] }) {
  const args = ['-u', `http://127.0.0.1:${port}/v1/chat/completions`, '-c', String(c), '-n', String(n),
    '-d', '600', '-b', body, '-H', 'Authorization: Bearer bench-master-key-0123456789',
    '-H', 'Content-Type: application/json', ...(stream ? ['-s'] : []), ...extra];
  return runLoad(LOAD, args, { core: 1, sched: 'none', timeoutMs: 900000 });
}

function checkOk(r, what, n) {
  if (r.ok !== n || r.errors !== 0) throw new Error(`${what}: ${r.ok} ok of ${n}, errors ${JSON.stringify(r)}`);
}

// strace over the gateway's threads while `fn` runs (one file per thread);
// returns the calls of the event-loop thread (the one that ran epoll_wait
// most) and of the other threads (store writer, ...) by name.
async function straced(pid, fn) {
  const tids = fs.readdirSync(`/proc/${pid}/task`);
  const prefix = path.join(work, `strace-${Date.now()}`);
  const st = startProcess(['strace', '-f', '-ff', '-qq', '-o', prefix, ...tids.flatMap((t) => ['-p', t])]);
  await sleep(500); // attached
  await fn();
  st.kill('SIGINT');
  await st.exited;
  const threads = [];
  for (const f of fs.readdirSync(work).filter((x) => x.startsWith(path.basename(prefix) + '.'))) {
    const calls = {};
    for (const line of fs.readFileSync(path.join(work, f), 'utf8').split('\n')) {
      const m = line.match(/^(\w+)\(/);
      if (m) calls[m[1]] = (calls[m[1]] || 0) + 1;
    }
    threads.push(calls);
    fs.unlinkSync(path.join(work, f));
  }
  threads.sort((x, y) => (y.epoll_wait || 0) - (x.epoll_wait || 0));
  const other = {};
  for (const t of threads.slice(1)) for (const [k, v] of Object.entries(t)) other[k] = (other[k] || 0) + v;
  return { loop: threads[0] || {}, other };
}

const perUnit1 = (calls, units) => {
  const o = {};
  let total = 0;
  for (const [k, v] of Object.entries(calls).sort((x, y) => y[1] - x[1])) { o[k] = +(v / units).toFixed(3); total += v; }
  return { total: +(total / units).toFixed(3), by_call: o };
};
const perUnit = (t, units) => ({ loop_thread: perUnit1(t.loop, units), other_threads: perUnit1(t.other, units) });

async function allocRun(up, runFn) {
  const out = path.join(work, `alloc-${Date.now()}-${Math.random()}.json`);
  const gw = await startGateway(up, { LD_PRELOAD: PRELOAD, YR_ALLOC_COUNT_OUT: out });
  await load(gw.port, { n: 200, c: 2, body: bodies.fast }); // warm: connections, caches
  await runFn(gw);
  await stopProcess(gw.child, 20000);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  return { allocs: j.malloc + j.calloc + j.realloc + j.memalign, frees: j.free };
}

const res = { n: N, c: C, events_per_stream: EVENTS, streams: STREAMS, upstream: UPSTREAM };
const sim = await startSim();
let fast = null, streamer = null;
let reqUp = { port: sim.port };
// the concurrent streams' upstream: the simulator, or yr-upstream's stream
// mode (64 chunks 20 ms apart, as the simulator's) over plain HTTP or TLS
let streamUp = { port: sim.port };
if (UPSTREAM !== 'sim') {
  const pki = UPSTREAM === 'tls' || UPSTREAM === 'h2' ? makePki(path.join(work, 'pki')) : null;
  const startUpstream = async (extra) => {
    const child = startProcess([path.join(buildDir, 'bench', 'yr-upstream'), '--listen', '127.0.0.1:0', ...extra,
      ...(pki ? ['--cert', pki.cert, '--key', pki.key] : []), ...(UPSTREAM === 'h2' ? ['--h2'] : [])]);
    const m = await waitForOutput(child, /listening on 127\.0\.0\.1:(\d+)/, 10000);
    return { child, up: { port: Number(m[1]), ca: pki?.ca } };
  };
  ({ child: fast, up: reqUp } = await startUpstream([]));
  ({ child: streamer, up: streamUp } = await startUpstream(['--stream', '64:20']));
}
try {
  // ---- syscalls per request / per event
  if (ONLY.has('syscalls')) {
    const rgw = await startGateway(reqUp);
    await load(rgw.port, { n: 2000, c: C, body: bodies.fast });
    let r;
    const calls = await straced(rgw.child.pid, async () => { r = await load(rgw.port, { n: N, c: C, body: bodies.fast }); });
    checkOk(r, 'requests', N);
    res.syscalls_per_request = perUnit(calls, N);
    await stopProcess(rgw.child, 20000);
    const gw = await startGateway(sim.port);
    await load(gw.port, { n: 200, c: 2, body: bodies.fast });
    const ns = Math.max(10, Math.round(N / 10 / EVENTS * 10));
    let rs;
    const scalls = await straced(gw.child.pid, async () => { rs = await load(gw.port, { n: ns, c: Math.min(C, ns), body: bodies.burst, stream: true }); });
    checkOk(rs, 'streams', ns);
    res.stream_runs = ns;
    // events the client sees: role chunk + EVENTS content + finish + [DONE]
    res.syscalls_per_event = perUnit(scalls, ns * (EVENTS + 3));
    await stopProcess(gw.child, 20000);
  }
  // ---- allocations per request / per event
  if (!ONLY.has('allocs')) {
    /* skipped */
  } else if (fs.existsSync(PRELOAD)) {
    const base = await allocRun(reqUp, async () => {});
    const withReq = await allocRun(reqUp, async (gw) => checkOk(await load(gw.port, { n: N, c: C, body: bodies.fast }), 'alloc requests', N));
    res.allocs_per_request = +((withReq.allocs - base.allocs) / N).toFixed(2);
    res.frees_per_request = +((withReq.frees - base.frees) / N).toFixed(2);
    const ns = Math.max(10, Math.round(N / 10 / EVENTS * 10));
    const sbase = UPSTREAM === 'sim' ? base : await allocRun(sim.port, async () => {});
    const withStr = await allocRun(sim.port, async (gw) => checkOk(await load(gw.port, { n: ns, c: Math.min(C, ns), body: bodies.burst, stream: true }), 'alloc streams', ns));
    // minus the per-request part, so what remains is per event
    const evAllocs = withStr.allocs - sbase.allocs - ns * res.allocs_per_request;
    res.allocs_per_stream_total = +((withStr.allocs - sbase.allocs) / ns).toFixed(1);
    res.allocs_per_event = +(evAllocs / (ns * (EVENTS + 3))).toFixed(3);
  } else {
    res.allocs_note = `${PRELOAD} is missing (build the yr-alloc-count target)`;
  }
  // ---- RSS per 1,000 concurrent streams
  if (ONLY.has('rss')) {
    const gw = await startGateway(streamUp);
    await load(gw.port, { n: 8, c: 8, body: bodies.stream, stream: true }); // warm: connections, caches
    await sleep(300);
    const idle = rssKb([gw.child.pid]);
    const r = await load(gw.port, { n: STREAMS, c: STREAMS, body: bodies.stream, stream: true, extra: ['-p', String(gw.child.pid), '-t', '60'] });
    res.rss_idle_kb = idle;
    res.rss_streams = { ok: r.ok, errors: r.errors, stalls: r.stalls, peak_kb: r.peer?.rss_max_kb };
    if (r.peer?.rss_max_kb) res.rss_per_1000_streams_kb = Math.round(((r.peer.rss_max_kb - idle) * 1000) / STREAMS);
    await stopProcess(gw.child, 20000);
  }
} finally {
  await stopProcess(sim.child);
  if (fast) await stopProcess(fast);
  if (streamer) await stopProcess(streamer);
}
console.log(JSON.stringify(res, null, 2));
