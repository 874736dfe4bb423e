-- wrk script for bench/overhead: POST a small chat completion (non-streaming) on every request.
-- The model comes from the environment (BENCH_MODEL, default gpt-4o); extra headers are given to
-- wrk with -H (Portkey's routing headers).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. (os.getenv("BENCH_MODEL") or "gpt-4o") ..
           '","messages":[{"role":"user","content":"Say hello"}]}'

local non200 = 0
function response(status, headers, body)
   if status ~= 200 then non200 = non200 + 1 end
end
