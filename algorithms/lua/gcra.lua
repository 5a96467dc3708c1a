-- gcra: the generic cell rate algorithm. A hash {tat, f}: the theoretical arrival
-- time TAT = tat + f/L microseconds, kept exact because the emission interval W/L
-- need not be a whole microsecond. Differences from now are counted in units of
-- 1/L microsecond, in which the emission interval T is exactly W units.
-- Admitted when now >= TAT - (B-1)T; then TAT = max(TAT, now) + T.
local state = redis.call('HMGET', key, 'tat', 'f')
local diff = 0
if state[1] then
  local tat = tonumber(state[1])
  if tat >= now then
    diff = (tat - now) * limit + (tonumber(state[2]) or 0)
  end
end
local tau = (burst - 1) * window
if diff <= tau then
  local next = diff + window
  local whole = idiv(next, limit)
  redis.call('HSET', key, 'tat', int(now + whole), 'f', int(next - whole * limit))
  local reset = cdiv(next, limit)
  expire_in(reset)
  return {1, idiv(burst * window - next, window), 0, reset, 0, now}
end
return {0, 0, cdiv(diff - tau, limit), cdiv(diff, limit), 0, now}
