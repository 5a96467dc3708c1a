-- token-bucket: a hash {t = tokens, ts = time of t (us)}. Tokens are counted in
-- units of 1/W of a token, so the refill of L tokens per W is exactly L units per
-- microsecond. The bucket holds at most B tokens and starts full.
local unit = window
local cap = burst * unit
local state = redis.call('HMGET', key, 't', 'ts')
local tokens = cap
if state[1] then
  tokens = tonumber(state[1])
  local elapsed = now - tonumber(state[2])
  if elapsed > 0 then
    if elapsed >= cdiv(cap - tokens, limit) then
      tokens = cap
    else
      tokens = tokens + elapsed * limit
    end
  end
end
if tokens >= unit then
  tokens = tokens - unit
  redis.call('HSET', key, 't', int(tokens), 'ts', int(now))
  local full = cdiv(cap - tokens, limit)
  redis.call('PEXPIRE', key, ttl_ms(full))
  return {1, floor(tokens / unit), 0, full, 0, now}
end
return {0, 0, cdiv(unit - tokens, limit), cdiv(cap - tokens, limit), 0, now}
