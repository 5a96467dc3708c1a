-- Extends a fill lock, only for its owner. KEYS[1] the lock; ARGV[1] the owner's
-- token, ARGV[2] the new ttl (ms). Returns 1 when renewed, 0 when the lock is not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
