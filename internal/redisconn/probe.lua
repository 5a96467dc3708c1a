-- probe: a write shaped like a limiter check, for health checks. It runs as a script
-- (EVALSHA) and writes a key under ratelab's prefix with a short TTL, so that every
-- reason a limiter check can fail (out of memory with noeviction, a read-only replica,
-- ACL permissions, scripting disabled, a stalled server) fails the probe too; a PING
-- would pass all of them.
-- KEYS[1] the probe key; ARGV[1] a value; ARGV[2] its TTL in milliseconds.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
