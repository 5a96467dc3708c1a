-- Invalidates a cached product: drops its value and bumps its generation, so that a
-- fill in flight cannot write the old value back. KEYS[1] the product key; ARGV[1] how
-- long (ms) the generation must be kept: longer than any fill lasts.
-- Returns the new generation.
redis.call('HDEL', KEYS[1], 'v', 'nf', 'x')
local g = redis.call('HINCRBY', KEYS[1], 'g', 1)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return g
