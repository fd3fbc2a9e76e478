// Vertex AI test fixtures: a throwaway service account (an RSA key made at
// test time, never committed), registered with a simulator's token
// endpoint, and a gateway config with Vertex providers.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROJECT = 'test-proj';

// A service-account key file's JSON, and the public key the simulator checks.
export function serviceAccount(sim, email = 'gateway@test-proj.iam.gserviceaccount.com') {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const json = {
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: 'k' + '0'.repeat(39),
    private_key: privateKey,
    client_email: email,
    client_id: '1234567890',
    token_uri: `${sim.base}/token`,
  };
  return { json, publicKey, email };
}

export async function registerAccount(sim, sa, ttl) {
  const r = await fetch(`${sim.base}/_sim/vertex`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accounts: [{ client_email: sa.email, public_key: sa.publicKey }], ...(ttl ? { token_ttl_s: ttl } : {}) }),
  });
  if (r.status !== 200) throw new Error(`register: ${r.status}`);
}

export async function vertexStats(sim, path = '/_sim/vertex', method = 'GET') {
  return (await fetch(`${sim.base}${path}`, { method })).json();
}

// providers: name -> { sa (written to a file), inline (credentials_json),
// api_key, location, publisher }; models: [{ id, provider, model }].
export function vertexConfig(dir, sim, providers, models) {
  let y = 'server:\n  listen: 127.0.0.1:0\n  master_key: ${YOUROUTER_MASTER_KEY}\n  workers: 1\n  log_level: debug\n' +
    'storage:\n  url: sqlite://yourouter.db\nproviders:\n';
  for (const [name, p] of Object.entries(providers)) {
    y += `  ${name}:\n    kind: vertex\n    base_url: ${sim.base}\n    location: ${p.location ?? 'us-east5'}\n`;
    if (p.publisher) y += `    publisher: ${p.publisher}\n`;
    if (p.project) y += `    project: ${p.project}\n`;
    if (p.api_key) y += `    api_key: ${p.api_key}\n`;
    if (p.sa && p.inline) {
      y += `    credentials_json: '${JSON.stringify(p.sa.json).replace(/'/g, "''")}'\n`;
    } else if (p.sa) {
      const file = join(dir, `${name}-sa.json`);
      writeFileSync(file, JSON.stringify(p.sa.json));
      y += `    credentials_file: ${file}\n`;
    }
  }
  y += 'models:\n';
  for (const m of models) {
    y += `  - id: ${m.id}\n    routes:\n`;
    for (const r of m.routes ?? [m]) y += `      - provider: ${r.provider}\n        model: '${r.model}'\n`;
  }
  return y;
}
