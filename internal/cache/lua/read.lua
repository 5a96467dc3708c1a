-- Reads a cached product. KEYS[1] the product key, KEYS[2] its fill lock.
-- Returns {status, value, generation, now_ms, locked}: status 1 a value, 2 a cached
-- "not found", 0 nothing (a miss). The generation is what a fill must find unchanged
-- when it writes (write.lua); invalidate.lua bumps it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'v', 'nf', 'x', 'g')
local gen = h[4] or '0'
local locked = redis.call('EXISTS', KEYS[2])
if h[3] and tonumber(h[3]) > now then
  if h[1] then return {1, h[1], gen, now, locked} end
  if h[2] then return {2, '', gen, now, locked} end
end
return {0, '', gen, now, locked}
