-- leaky-bucket (shaping): a hash {l = queue level, ts = time of l (us)}. The level is
-- counted in units of 1/W of a request and leaks at L units per microsecond, so the
-- queue drains at exactly L per W. A request joins while fewer than B are queued and
-- leaves when those ahead of it have drained: its delay.
local unit = window
local state = redis.call('HMGET', key, 'l', 'ts')
local level = 0
if state[1] then
  level = tonumber(state[1])
  local elapsed = now - tonumber(state[2])
  if elapsed > 0 then
    if elapsed >= cdiv(level, limit) then
      level = 0
    else
      level = level - elapsed * limit
    end
  end
end
if level <= (burst - 1) * unit then
  local delay = cdiv(level, limit)
  level = level + unit
  redis.call('HSET', key, 'l', int(level), 'ts', int(now))
  local empty = cdiv(level, limit)
  redis.call('PEXPIRE', key, ttl_ms(empty))
  return {1, floor((burst * unit - level) / unit), 0, empty, delay, now}
end
return {0, 0, cdiv(level - (burst - 1) * unit, limit), cdiv(level, limit), 0, now}
