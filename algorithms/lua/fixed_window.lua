-- fixed-window: a hash {w = window start (us), n = requests admitted in it}.
-- Windows are aligned to the epoch, so every node agrees where they start.
local start = floor(now / window) * window
local state = redis.call('HMGET', key, 'w', 'n')
local count = 0
if tonumber(state[1]) == start then
  count = tonumber(state[2]) or 0
end
local reset = start + window - now
if count < limit then
  count = count + 1
  redis.call('HSET', key, 'w', int(start), 'n', int(count))
  redis.call('PEXPIRE', key, ttl_ms(reset))
  return {1, limit - count, 0, reset, 0, now}
end
return {0, 0, reset, reset, 0, now}
