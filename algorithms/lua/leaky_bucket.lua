-- leaky-bucket (shaping): a hash {l = queue level, ts = time of l (us), b = when the
-- current busy period began (us), n = requests admitted in it}. The level is counted
-- in units of 1/W of a request and leaks at L units per microsecond, so the queue
-- drains at exactly L per W. A request joins while there is room for it (the level is
-- at most (B-1) units) and its wait would be at most the max delay; it leaves when
-- those ahead of it have drained: its delay. The busy period (b, and the request's
-- place n in it) names an admitted request, so that it can be given back.
--   ARGV[5]   the max delay in microseconds, at most cdiv((B-1)W, L)
--   ARGV[6]   empty to decide a request; 'give-back' to give one back, with
--   ARGV[7..10] the request's decision time, delay, busy period and place in it.
-- A decision returns the prelude's six values and the busy period and place of an
-- admitted request (0, 0 when denied); a give-back returns {1 if given back else 0, now}.
local unit = window
local max_delay = tonumber(ARGV[5])
local state = redis.call('HMGET', key, 'l', 'ts', 'b', 'n')
local level = 0
local since = tonumber(state[3]) or 0
local n = tonumber(state[4]) or 0
if state[1] then
  level = tonumber(state[1])
  local elapsed = now - tonumber(state[2])
  if elapsed > 0 and level > 0 then
    if elapsed >= cdiv(level, limit) then
      level = 0
    else
      level = level - elapsed * limit
    end
  end
end

if ARGV[6] == 'give-back' then
  -- A slot is given back only while the level proves the request still waits: one
  -- unit for it and one for each request admitted after it. Before its departure,
  -- in its own busy period, and at most once per request (the caller's promise).
  local at, delay = tonumber(ARGV[7]), tonumber(ARGV[8])
  local b, seq = tonumber(ARGV[9]), tonumber(ARGV[10])
  if not state[1] or delay <= 0 or now < at or now >= at + delay or b ~= since or seq < 0 or seq >= n
      or n - seq > burst or level < (n - seq) * unit then
    return {0, now}
  end
  level = level - unit
  redis.call('HSET', key, 'l', int(level), 'ts', int(now))
  redis.call('PEXPIRE', key, ttl_ms(cdiv(level, limit)))
  return {1, now}
end

local ceiling = math.min((burst - 1) * unit, max_delay * limit)
if level <= ceiling then
  if level == 0 then
    since, n = now, 0
  end
  local delay = cdiv(level, limit)
  local remaining = floor((ceiling - level) / unit)
  local seq = n
  level = level + unit
  redis.call('HSET', key, 'l', int(level), 'ts', int(now), 'b', int(since), 'n', int(n + 1))
  local empty = cdiv(level, limit)
  redis.call('PEXPIRE', key, ttl_ms(empty))
  return {1, remaining, 0, empty, delay, now, since, seq}
end
return {0, 0, cdiv(level - ceiling, limit), cdiv(level, limit), 0, now, 0, 0}
