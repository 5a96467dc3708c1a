-- gcra: the generic cell rate algorithm. One string, "<tat>" or "<tat> <f>": the
-- theoretical arrival time TAT = tat + f/L microseconds, kept exact because the
-- emission interval W/L need not be a whole microsecond. Differences from now are
-- counted in units of 1/L microsecond, in which the emission interval T is exactly W.
-- Admitted when now >= TAT - (B-1)T; then TAT = max(TAT, now) + T.
-- A string read with GET and written with one SET PX: the fewest calls of any script.
local diff = 0
local state = redis.call('GET', key)
if state then
  local tat, f = tonumber(state), 0
  if not tat then
    local sp = string.find(state, ' ', 1, true)
    tat, f = tonumber(string.sub(state, 1, sp - 1)), tonumber(string.sub(state, sp + 1))
  end
  if tat >= now then
    diff = (tat - now) * limit + f
  end
end
local tau = (burst - 1) * window
if diff <= tau then
  local next = diff + window
  local whole = floor(next / limit)
  local f = next - whole * limit
  local value = int(now + whole)
  if f > 0 then
    value = value .. ' ' .. int(f)
  end
  local reset = cdiv(next, limit)
  redis.call('SET', key, value, 'PX', ttl_ms(reset))
  return {1, floor((burst * window - next) / window), 0, reset, 0, now}
end
return {0, 0, cdiv(diff - tau, limit), cdiv(diff, limit), 0, now}
