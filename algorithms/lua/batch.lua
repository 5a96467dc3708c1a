-- batch: the checks of one limiter that share a round trip, in one call. Preceded,
-- like multi.lua, by the prelude's helpers and each algorithm's script wrapped as a
-- function check[name](redis, key, limit, window, burst, now, ARGV). Arguments:
--   KEYS[i]  the state key of check i
--   ARGV[1]  the algorithm's name
--   then for each check i in turn: n, and the n values of ARGV its own script takes
--            (limit, window us, burst, now us or empty, and the leaky bucket's own)
-- Each check is decided by its algorithm's own text, one after the other, exactly as
-- if its script had been called alone at that point; checks without a time of their
-- own share one TIME of the call. A check that fails answers with its error and
-- leaves the others alone. Returns one reply per check, in order.
local decide = check[ARGV[1]]
local shared
local out = {}
local at = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[at])
  local argv = {}
  for j = 1, n do
    argv[j] = ARGV[at + j]
  end
  at = at + n + 1
  local now = tonumber(argv[4])
  if not now then
    if not shared then
      local t = redis.call('TIME')
      shared = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = shared
  end
  local ok, r = pcall(decide, redis, KEYS[i], tonumber(argv[1]), tonumber(argv[2]), tonumber(argv[3]), now, argv)
  if ok then
    out[i] = r
  elseif type(r) == 'table' and r.err then
    out[i] = r
  else
    out[i] = redis.error_reply(tostring(r))
  end
end
return out
