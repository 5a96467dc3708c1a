-- Shared by every ratelab limiter script. Arguments:
--   KEYS[1]  the identity's state key
--   ARGV[1]  limit L, ARGV[2] window W in microseconds, ARGV[3] burst B
--   ARGV[4]  now in microseconds; empty to use the server's TIME
-- Every script returns {allowed, remaining, retry_after_us, reset_after_us, delay_us, now_us};
-- leaky_bucket.lua adds two values and has a second mode, give-back (see there).
-- All values are integers below 2^53, so Lua's doubles hold them exactly.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local floor = math.floor

-- floor(a / b) of non-negative integers is exact as floor(a / b) in doubles here:
-- a correctly rounded quotient can only round up to an integer n when n*b - a < b
-- and n*b > 2^53, that is when a + b > 2^53; policy bounds keep every dividend at or
-- below 2^52 + 2*window and every divisor at most the window, far from that.

-- ceil(a / b) for integers a >= 0, b > 0.
local function cdiv(a, b)
  return floor((a + b - 1) / b)
end

-- An integer as Redis should store it: never in exponent notation.
local function int(x)
  return string.format('%d', x)
end

-- The TTL of a state that is back to fresh us microseconds from now: that, in whole
-- ms, plus a grace second, because the state must outlive its last use even when the
-- clock that decides (TIME, or an explicit virtual time) and the server's expiry
-- clock drift apart.
local function ttl_ms(us)
  return cdiv(us, 1000) + 1000
end

