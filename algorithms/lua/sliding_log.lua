-- sliding-log: a sorted set of admitted request times (score = member time, us).
-- A request is admitted when fewer than L were admitted in (now - W, now].
redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
local count = redis.call('ZCARD', key)
if count < limit then
  -- Members must be unique even when requests share a microsecond.
  local seq = count
  while redis.call('ZADD', key, 'NX', int(now), int(now) .. '-' .. int(seq)) == 0 do
    seq = seq + 1
  end
  redis.call('PEXPIRE', key, ttl_ms(window))
  return {1, limit - count - 1, 0, window, 0, now}
end
-- The (count - L + 1)-th oldest admission must leave the window before a slot frees.
local frees = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
return {0, 0, tonumber(frees[2]) + window - now, tonumber(newest[2]) + window - now, 0, now}
