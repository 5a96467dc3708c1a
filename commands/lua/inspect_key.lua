-- Reads a key for ratelab inspect, atomically, with the server's TIME: its type, TTL
-- and content, and for a product (KEYS[2] given) the type, TTL and value of its fill
-- lock, which shares its hash slot. One round trip, and "now" is the clock of the
-- server holding the key.
-- KEYS[1] the key; KEYS[2], optional, the product's fill lock.
-- Returns {seconds, microseconds, type, pttl, content, lock}: content is HGETALL,
-- ZRANGE WITHSCORES or {GET} by type; lock is {} or {type, pttl[, value]}.
local function typeof(k)
  local t = redis.call('TYPE', k)
  if type(t) == 'table' then t = t['ok'] end
  return t
end
local t = redis.call('TIME')
local typ = typeof(KEYS[1])
local content = {}
if typ == 'hash' then
  content = redis.call('HGETALL', KEYS[1])
elseif typ == 'zset' then
  content = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
elseif typ == 'string' then
  content = {redis.call('GET', KEYS[1])}
end
local lock = {}
if KEYS[2] then
  local lt = typeof(KEYS[2])
  if lt ~= 'none' then
    lock = {lt, redis.call('PTTL', KEYS[2])}
    if lt == 'string' then lock[3] = redis.call('GET', KEYS[2]) end
  end
end
return {t[1], t[2], typ, redis.call('PTTL', KEYS[1]), content, lock}
