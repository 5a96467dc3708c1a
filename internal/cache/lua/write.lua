-- Writes a filled product, unless the product was invalidated since the fill read
-- its generation (no late write-back) or the fill is older than a generation is kept.
-- KEYS[1] the product key. ARGV: generation read, fill start (ms, server time),
-- longest fill (ms), value, ttl (ms), "1" for a cached "not found".
-- Returns 1 when written, 0 when refused.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
local gen = redis.call('HGET', KEYS[1], 'g') or '0'
if gen ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[5])
local expires = string.format('%.0f', now + ttl)
if ARGV[6] == '1' then
  redis.call('HDEL', KEYS[1], 'v')
  redis.call('HSET', KEYS[1], 'nf', '1', 'x', expires, 'g', gen)
else
  redis.call('HDEL', KEYS[1], 'nf')
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'x', expires, 'g', gen)
end
-- The key lives as long as the entry, and never less than an invalidation marker
-- already on it: the generation must outlive every fill that read an older one.
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
