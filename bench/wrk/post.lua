-- wrk script for bench/run: POST the body in $WRK_BODY with the headers in
-- $WRK_HEADERS ("Name: value" lines). The body is fixed (wrk has no cheap
-- per-request templating); none of the peers caches responses.
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
for line in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end
