-- multi: several limits of one request in one atomic call. Preceded by the prelude's
-- helpers and, for each algorithm, its script wrapped as a function
--   check[name](redis, key, limit, window, burst, now, ARGV)
-- that returns the algorithm's decision. Arguments:
--   KEYS[i]  the state key of limit i; every key shares the identity's hash tag
--   ARGV[1]  now in microseconds; empty to use the server's TIME
--   ARGV[1 + 5(i-1) + 1..5]  limit i's algorithm, L, W (us), B, and the leaky bucket's max delay
-- Every limit is decided against its state as it is; each algorithm's writes go to a
-- queue instead of Redis. Only when every limit admits are the queues applied, so a
-- denial changes no limit's count. (The sliding log drops times that have left its
-- window as it reads: that changes what the key holds, never what it counts.)
-- Returns {allowed, then for each limit its eight values: allowed, remaining,
-- retry_after_us, reset_after_us, delay_us, now_us, and the leaky bucket's busy
-- period and place (0, 0 for the others)}.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local real = redis
local writes = {HSET = true, SET = true, PEXPIRE = true}

-- A stand-in for redis whose writes wait in queue. ZADD NX answers as the real one
-- would: 0 when the member is already in the set or in the queue.
local function deferred(queue)
  local members = {}
  return {call = function(cmd, ...)
    local c = string.upper(cmd)
    if writes[c] then
      queue[#queue + 1] = {cmd, ...}
      return 1
    end
    if c == 'ZADD' then
      local args = {...}
      local key, member = args[1], args[#args]
      if members[member] or real.call('ZSCORE', key, member) then
        return 0
      end
      members[member] = true
      queue[#queue + 1] = {cmd, ...}
      return 1
    end
    return real.call(cmd, ...)
  end}
end

local results, queues = {}, {}
local allowed = 1
for i = 1, #KEYS do
  local at = 1 + 5 * (i - 1)
  local queue = {}
  local r = check[ARGV[at + 1]](deferred(queue), KEYS[i], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3]),
    tonumber(ARGV[at + 4]), now, {[5] = ARGV[at + 5], [6] = ''})
  results[i], queues[i] = r, queue
  if r[1] ~= 1 then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, #queues do
    for _, call in ipairs(queues[i]) do
      real.call(unpack(call))
    end
  end
end
local out = {allowed}
for i = 1, #results do
  local r = results[i]
  for j = 1, 8 do
    out[#out + 1] = r[j] or 0
  end
end
return out
