-- sliding-counter: a hash {w = current window start (us), c = admitted in it,
-- p = admitted in the window before}. The previous window counts in proportion to
-- how much of it still overlaps (now - W, now]:
--   estimate = p * (W - elapsed) / W + c, admitted while estimate < L,
-- compared multiplied through by W so it stays in integers.
local start = floor(now / window) * window
local elapsed = now - start
local state = redis.call('HMGET', key, 'w', 'c', 'p')
local w = tonumber(state[1])
local cur, prev = 0, 0
if w == start then
  cur, prev = tonumber(state[2]) or 0, tonumber(state[3]) or 0
elseif w == start - window then
  prev = tonumber(state[2]) or 0
end
local room = limit * window - prev * (window - elapsed)
if cur * window < room then
  cur = cur + 1
  redis.call('HSET', key, 'w', int(start), 'c', int(cur), 'p', int(prev))
  redis.call('PEXPIRE', key, ttl_ms(start + 2 * window - now))
  return {1, math.max(0, cdiv(room, window) - cur), 0, start + 2 * window - now, 0, now}
end
local retry
if cur < limit then
  -- Later in this window, when prev * (W - e) < (L - cur) * W.
  retry = window - floor(((limit - cur) * window - 1) / prev) - elapsed
else
  -- In the next window, where this window's count becomes the weighted one.
  retry = (window - elapsed) + window - floor((limit * window - 1) / cur)
end
local reset = start + window - now
if cur > 0 then
  reset = reset + window
end
return {0, 0, retry, reset, 0, now}
