-- wrk script for the REST benchmark (tests/bench/rest_bench.sh): signatures/signHash with
-- keep-alive connections. The benchmark writes the parameters to the file named by
-- RSSP_BENCH_PARAMS: one "key value" per line (token, credential, oid, algo, calls_per_sad)
-- then "hashes <b64>,<b64>,..." and one "sad <SAD>" line per SAD. SADs are handed out so
-- that each wrk thread spends its own SADs, calls_per_sad calls each, never sharing one.

local params = { sads = {} }
local f = assert(io.open(os.getenv("RSSP_BENCH_PARAMS"), "r"))
for line in f:lines() do
  local k, v = line:match("^(%S+) (.*)$")
  if k == "sad" then
    table.insert(params.sads, v)
  elseif k then
    params[k] = v
  end
end
f:close()

local nthreads = tonumber(os.getenv("RSSP_BENCH_THREADS") or "2")
local tid = 0

function setup(thread)
  thread:set("id", tid)
  thread:set("nthreads", nthreads)
  tid = tid + 1
end

function init(args)
  calls = 0
  errors = 0  -- only for the first few messages; wrk counts non-2xx itself
  per_sad = tonumber(params.calls_per_sad)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. params.token
  local hs = {}
  for h in params.hashes:gmatch("[^,]+") do table.insert(hs, '"' .. h .. '"') end
  prefix = '{"credentialID":"' .. params.credential .. '","hashAlgorithmOID":"' .. params.oid ..
    '","signAlgo":"' .. params.algo .. '","hashes":[' .. table.concat(hs, ",") .. '],"SAD":"'
end

function request()
  -- SAD number k of this thread is the global one id + k * nthreads (1-based in Lua).
  local k = math.floor(calls / per_sad)
  local sad = params.sads[id + k * nthreads + 1] or params.sads[#params.sads]
  calls = calls + 1
  return wrk.format(nil, "/rssp/signatures/signHash", nil, prefix .. sad .. '"}')
end

function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("signHash " .. status .. " " .. body:sub(1, 200) .. "\n") end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk requests=%d seconds=%.3f non200=%d sockerr=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
