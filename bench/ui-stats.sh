#!/usr/bin/env bash
# How fast the admin UI's endpoints answer over a big usage table: fills a
# SQLite database with ROWS usage rows (default 1,000,000, spread over 7
# days, ~3% failed over to a second attempt) and KEYS keys (default 2000),
# starts the gateway on it and prints the median of 5 calls per endpoint.
#   bench/ui-stats.sh [BUILD_DIR]          (default build-rel)
# With SCREENSHOT=file.png it also saves the usage page (chromium +
# playwright-core from tests/node_modules), as docs/ui.png was made.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-rel}
rows=${ROWS:-1000000}
keys=${KEYS:-2000}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
master=sk-bench-master-0123456789abcdef
cat > "$dir/c.yaml" <<YAML
server:
  listen: 127.0.0.1:0
  master_key: $master
  workers: 2
storage:
  url: sqlite://$dir/bench.db
providers:
  openai:
    kind: openai
    base_url: http://127.0.0.1:9/v1
models:
  - id: gpt-4o
    routes:
      - provider: openai
YAML
"$build/yourouter" keys list --config "$dir/c.yaml" >/dev/null # creates the schema
now=$(($(date +%s) * 1000))
step=$((7 * 86400000 / rows))
t0=$(date +%s.%N)
sqlite3 "$dir/bench.db" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $keys)
INSERT INTO api_keys (name, key_hash, prefix, created_at, budget_monthly_micros)
SELECT printf('team-%05d', i), randomblob(32), 'yr-bench00', $now / 1000 - 86400 * 30,
       CASE WHEN i % 3 = 0 THEN 50000000 END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO usage (request_id, attempt, key_id, model_id, provider, upstream_model, status,
  upstream_status, outcome, error_class, prompt_tokens, completion_tokens, cached_tokens,
  cache_write_tokens, reasoning_tokens, cost_micros, latency_ms, ttfb_ms, stream, cancelled,
  created_ms)
SELECT printf('req_%012d', i / 1 - (i % 33 = 1)), (i % 33 = 1),
  1 + (i * 7) % $keys, 'model-' || (i % 12), CASE WHEN i % 33 = 1 THEN 'vendor-b' ELSE 'vendor-' || (i % 4) END,
  'up-' || (i % 12), CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END,
  CASE WHEN i % 33 = 0 OR i % 97 = 0 THEN 500 ELSE 200 END,
  CASE WHEN i % 33 = 0 OR i % 97 = 0 THEN 'server_error' ELSE 'ok' END,
  CASE WHEN i % 33 = 0 OR i % 97 = 0 THEN 'server_error' END,
  100 + i % 900, 20 + i % 400, i % 50, 0, i % 7, 200 + i % 3000,
  80 + (i * 7919) % 4000, 30 + (i * 31) % 900, i % 2, 0, $now - ($rows - i) * $step
FROM n;
COMMIT;
-- The rows went in behind the rollups' back: go back one schema version so
-- the gateway's start runs the rollup migration (7) over them, timed below.
DROP TABLE usage_hourly;
DROP TABLE usage_key_hourly;
DROP TABLE usage_latency_hourly;
PRAGMA user_version = 6;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
printf 'filled %d usage rows and %d keys in %.1f s (%s MB)\n' "$rows" "$keys" \
  "$(echo "$(date +%s.%N) - $t0" | bc)" "$(($(stat -c %s "$dir/bench.db") / 1048576))"
"$build/yourouter" serve --config "$dir/c.yaml" > "$dir/out" 2> "$dir/err" &
pid=$!
t0=$(date +%s.%N)
for _ in $(seq 6000); do
  grep -q listening "$dir/out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/err" >&2; exit 1; }
  sleep 0.1
done
printf 'gateway up (rollup migration over the rows included) in %.1f s\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
port=$(sed -n 's/.*listening on [^:]*:\([0-9]*\).*/\1/p' "$dir/out")
base=http://127.0.0.1:$port
cursor=$(curl -s -H "authorization: Bearer $master" "$base/admin/requests?limit=200" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
for path in \
  "/admin/stats/series?since=1h&bucket=1m&by=model" \
  "/admin/stats/series?since=24h&bucket=30m&by=model" \
  "/admin/stats/series?since=24h&bucket=1h&by=model" \
  "/admin/stats/series?since=24h&bucket=1h&by=key" \
  "/admin/stats/series?since=7d&bucket=6h&by=vendor" \
  "/admin/stats/series?since=7d&bucket=6h&by=class" \
  "/admin/stats/latency?since=24h&bucket=30m" \
  "/admin/stats/latency?since=24h&bucket=1h" \
  "/admin/stats/latency?since=7d&bucket=6h" \
  "/admin/requests?limit=50" \
  "/admin/requests?limit=50&before=$cursor" \
  "/admin/requests?limit=50&errors=1" \
  "/admin/keys?limit=100" \
  "/admin/keys?limit=100&after=1900" \
  "/admin/keys?limit=100&q=team-019"; do
  times=()
  for _ in 1 2 3 4 5; do
    times+=("$(curl -s -o "$dir/body" -w '%{http_code} %{time_total}' -H "authorization: Bearer $master" "$base$path")")
  done
  code=${times[0]%% *}
  median=$(printf '%s\n' "${times[@]}" | awk '{print $2}' | sort -n | sed -n 3p)
  printf '%-60s %s %6.1f ms  %7d bytes\n' "$path" "$code" "$(echo "$median * 1000" | bc)" "$(stat -c %s "$dir/body")"
done
if [ -n "${SCREENSHOT:-}" ]; then
  NODE_PATH=$root/tests/node_modules node -e '
    const { chromium } = require("playwright-core");
    (async () => {
      const [base, key, out] = process.argv.slice(1);
      const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
      const p = await (await b.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
      await p.goto(base + "/ui/login");
      await p.fill("#password", key);
      await p.click("button[type=submit]");
      await p.waitForSelector("body[data-loaded=usage]");
      await p.selectOption("#window", "7d,6h");
      await p.waitForFunction(() => document.getElementById("status").textContent.startsWith("loaded"));
      await p.screenshot({ path: out });
      await b.close();
    })();' "$base" "$master" "$SCREENSHOT"
  echo "screenshot: $SCREENSHOT"
fi
