-- batch: the checks of one limiter that share a round trip, in one call. Preceded by
-- the prelude's helpers, each algorithm's script wrapped as a function
-- check[name](redis, key, limit, window, burst, now, ARGV), and multi.lua wrapped as a
-- function multi(KEYS, ARGV). Arguments:
--   ARGV[1]  the algorithm's name, or 'multi' for a policy's combined checks
--   then for each check in turn: its number of keys k and of values n, and the n values
--            of ARGV its own script takes; KEYS holds each check's k keys in turn
-- Each check is decided by its own script's text, one after the other, exactly as if
-- that script had been called alone at that point; single checks without a time of
-- their own share one TIME of the call. A check that fails answers with its error and
-- leaves the others alone. Returns one reply per check, in order.
local name = ARGV[1]
local decide = check[name]
local shared
local out = {}
local at, key = 2, 1
local i = 0
while at <= #ARGV do
  i = i + 1
  local k, n = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local keys, argv = {}, {}
  for j = 1, k do
    keys[j] = KEYS[key + j - 1]
  end
  for j = 1, n do
    argv[j] = ARGV[at + 1 + j]
  end
  at, key = at + 2 + n, key + k
  local ok, r
  if name == 'multi' then
    ok, r = pcall(multi, keys, argv)
  else
    local now = tonumber(argv[4])
    if not now then
      if not shared then
        local t = redis.call('TIME')
        shared = tonumber(t[1]) * 1000000 + tonumber(t[2])
      end
      now = shared
    end
    ok, r = pcall(decide, redis, keys[1], tonumber(argv[1]), tonumber(argv[2]), tonumber(argv[3]), now, argv)
  end
  if ok then
    out[i] = r
  elseif type(r) == 'table' and r.err then
    out[i] = r
  else
    out[i] = redis.error_reply(tostring(r))
  end
end
return out
