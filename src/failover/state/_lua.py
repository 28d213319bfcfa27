"""The Redis side of `RedisStore`: one Lua script, run atomically by Redis, one operation per call.

A quota's calls live in one hash per deployment and wall-clock minute (`r` requests, `t`
tokens), kept two minutes: the replica estimates the last 60 s from this minute's and the last
one's, which every call returns.

A breaker lives in a hash (`state gen until reopens probes ok cons fails slows since`) and its
sliding window in a list of `"<wall time> <failed><slow>"` entries (the time is the flush's: a
time-based window is as precise as the flush interval, a few milliseconds). Every transition
takes a new generation (`gen`, monotonic: max(gen + 1, now in ms), so it keeps growing even
after the hash expired or Redis restarted empty) and is published on the namespace's channel;
every reply is the breaker's state as JSON, so the caller applies it at once without waiting
for the message.

The thresholds mirror `CircuitBreaker` exactly (same comparisons, same reasons), so one replica
on Redis behaves like one process on `MemoryStore`; N replicas share one window, so together they
open after `consecutive_failures`, not N times that. Times are wall-clock seconds sent by the
caller (from its injected clock), so tests on a `FakeClock` drive Redis-side time too.
"""

from __future__ import annotations

import hashlib

__all__ = ["SCRIPT", "SHA"]

SCRIPT = r"""
local op = ARGV[1]

local function fmt(x) return string.format('%.17g', x) end
local function int(x) return string.format('%.0f', x) end
local function num(x, default)
  local v = tonumber(x)
  if v == nil then return default end
  return v
end

-- plain keys ---------------------------------------------------------------------------------

if op == 'cooldown' then  -- KEYS: cooldown; ARGV: op channel name now until
  local now, u = tonumber(ARGV[4]), tonumber(ARGV[5])
  local cur = tonumber(redis.call('GET', KEYS[1]))
  if (cur == nil or u > cur) and u > now then
    redis.call('SET', KEYS[1], fmt(u), 'PX', math.max(1, math.ceil((u - now) * 1000)))
    redis.call('PUBLISH', ARGV[2], cjson.encode({t = 'c', k = ARGV[3], u = fmt(u)}))
    cur = u
  end
  return fmt(cur or 0)
end

if op == 'health' then  -- KEYS: health; ARGV: op channel name healthy(1/0) ttl_ms
  local changed
  if ARGV[4] == '1' then
    changed = redis.call('DEL', KEYS[1]) == 1
  else
    changed = redis.call('SET', KEYS[1], '0', 'PX', ARGV[5], 'GET') == false
  end
  if changed then
    redis.call('PUBLISH', ARGV[2], cjson.encode({t = 'h', k = ARGV[3], v = ARGV[4]}))
  end
  return ARGV[4]
end

if op == 'budget' then  -- KEYS: budget; ARGV: op now min_per_second burst deposits spends ttl
  local now, rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local raw = redis.call('HMGET', KEYS[1], 'tokens', 'last')
  local tokens, last = num(raw[1], burst), num(raw[2], now)
  if now > last and rate > 0 then tokens = math.min(burst, tokens + (now - last) * rate) end
  tokens = math.min(burst, tokens + tonumber(ARGV[5]))
  tokens = math.max(-burst, tokens - tonumber(ARGV[6]))
  redis.call('HSET', KEYS[1], 'tokens', fmt(tokens), 'last', fmt(math.max(now, last)))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return fmt(tokens)
end

-- KEYS: this minute's count, the last one's; ARGV: op minute requests tokens ttl_ms
if op == 'quota' then
  if ARGV[3] ~= '0' or ARGV[4] ~= '0' then
    redis.call('HINCRBY', KEYS[1], 'r', ARGV[3])
    redis.call('HINCRBY', KEYS[1], 't', ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
  end
  local cur = redis.call('HMGET', KEYS[1], 'r', 't')
  local prev = redis.call('HMGET', KEYS[2], 'r', 't')
  return {ARGV[2], prev[1] or '0', prev[2] or '0', cur[1] or '0', cur[2] or '0'}
end

if op == 'lease' then  -- KEYS: lease; ARGV: op holder ttl_ms
  if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
  if redis.call('GET', KEYS[1]) == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
end

-- breakers: KEYS: hash, window ---------------------------------------------------------------
-- ARGV: op channel name now ttl_ms | window window_seconds min_calls failure_rate slow_call_rate
--       consecutive open_for max_open_for jitter half_open_calls random probe_timeout | op args...

local H, W = KEYS[1], KEYS[2]
local channel, name = ARGV[2], ARGV[3]
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local P = {
  window = tonumber(ARGV[6]), seconds = tonumber(ARGV[7]), min_calls = tonumber(ARGV[8]),
  rate = tonumber(ARGV[9]), slow = tonumber(ARGV[10]), consecutive = tonumber(ARGV[11]),
  open_for = tonumber(ARGV[12]), max_open_for = tonumber(ARGV[13]), jitter = tonumber(ARGV[14]),
  probes = tonumber(ARGV[15]), random = tonumber(ARGV[16]), probe_timeout = tonumber(ARGV[17]),
}
local MAX_ENTRIES = 4096  -- a time-based window keeps at most this many calls

local raw = redis.call('HMGET', H, 'state', 'gen', 'until', 'reopens', 'probes', 'ok', 'cons',
                       'fails', 'slows', 'since')
local b = {
  exists = raw[1] ~= false, state = raw[1] or 'closed', gen = num(raw[2], 0),
  ['until'] = num(raw[3], 0), reopens = num(raw[4], 0), probes = num(raw[5], 0),
  ok = num(raw[6], 0), cons = num(raw[7], 0), fails = num(raw[8], 0), slows = num(raw[9], 0),
  since = num(raw[10], now),
}

local function encode(grant, reason, open_for)
  return cjson.encode({
    t = 'b', k = name, e = b.exists and 1 or 0, s = b.state, g = int(b.gen),
    u = fmt(b['until']), r = int(b.reopens), p = int(b.probes), c = int(b.ok),
    f = int(b.fails), n = redis.call('LLEN', W), a = grant or 0, why = reason or '',
    d = open_for and fmt(open_for) or '',
  })
end

local function save()
  redis.call('HSET', H, 'state', b.state, 'gen', int(b.gen), 'until', fmt(b['until']),
             'reopens', int(b.reopens), 'probes', int(b.probes), 'ok', int(b.ok),
             'cons', int(b.cons), 'fails', int(b.fails), 'slows', int(b.slows),
             'since', fmt(b.since))
  b.exists = true
  if b.state == 'forced_open' or b.state == 'disabled' then
    redis.call('PERSIST', H)  -- set by hand, left by hand: never forgotten
  else
    redis.call('PEXPIRE', H, ttl)
  end
  redis.call('PEXPIRE', W, ttl)
end

local function open_duration(reopens)
  local base = math.min(P.max_open_for, P.open_for * 2 ^ math.min(reopens, 62))
  return base * (1 + P.jitter * (2 * P.random - 1))
end

local function to(new, reason, open_for, deadline)
  b.state = new
  b.gen = math.max(b.gen + 1, math.floor(now * 1000))
  b.probes, b.ok, b.since = 0, 0, now
  if new == 'closed' then
    b.cons, b.fails, b.slows = 0, 0, 0
    redis.call('DEL', W)
  end
  if deadline then
    b['until'] = deadline
  elseif new == 'open' then
    b['until'] = now + open_for
  end
  save()
  local event = encode(0, reason, open_for)
  redis.call('PUBLISH', channel, event)
end

local function trip(reason)
  to('open', reason, open_duration(b.reopens))
end

local function parse(entry)
  local space = string.find(entry, ' ', 1, true)
  return tonumber(string.sub(entry, 1, space - 1)), tonumber(string.sub(entry, space + 1,
         space + 1)), tonumber(string.sub(entry, space + 2, space + 2))
end

local function drop_oldest()
  local _, f, s = parse(redis.call('LPOP', W))
  b.fails, b.slows = b.fails - f, b.slows - s
end

local function evict()
  if P.seconds > 0 then
    local horizon = now - P.seconds
    while true do
      local head = redis.call('LINDEX', W, 0)
      if not head then break end
      local t = parse(head)
      if t > horizon and redis.call('LLEN', W) <= MAX_ENTRIES then break end
      drop_oldest()
    end
  else
    while redis.call('LLEN', W) > P.window do drop_oldest() end
  end
end

local function record(t, f, s)
  redis.call('RPUSH', W, t .. ' ' .. f .. s)
  b.fails, b.slows = b.fails + f, b.slows + s
  evict()
  if f == 1 then b.cons = b.cons + 1 else b.cons = 0 end
  if P.consecutive > 0 and b.cons >= P.consecutive then
    return trip(string.format('%d consecutive failures', b.cons))
  end
  local total = redis.call('LLEN', W)
  if total < P.min_calls then return end
  if b.fails / total >= P.rate then
    trip(string.format('failure rate %d/%d', b.fails, total))
  elseif P.slow > 0 and b.slows / total >= P.slow then
    trip(string.format('slow-call rate %d/%d', b.slows, total))
  end
end

if op == 'read' then
  return encode(0)
end

if op == 'record' then  -- ARGV[18] gen, ARGV[19] two digits per call: failed, slow
  local gen, calls = tonumber(ARGV[18]), ARGV[19]
  for i = 1, #calls, 2 do
    if b.state ~= 'closed' or b.gen ~= gen then break end
    record(ARGV[4], string.byte(calls, i) - 48, string.byte(calls, i + 1) - 48)
  end
  if b.state == 'closed' and b.gen == gen then save() end
  return encode(0)
end

if op == 'admit' then  -- 0: refused, 1: a HALF_OPEN probe, 2: a plain permit
  if b.state == 'open' then
    if now < b['until'] then return encode(0) end
    to('half_open', 'open_for elapsed')
  end
  if b.state == 'half_open' then
    if b.probes >= P.probes and now - b.since >= P.probe_timeout then
      b.probes, b.ok, b.since = 0, 0, now  -- the probes' replicas died: let new ones go
    end
    if b.probes >= P.probes then return encode(0) end
    b.probes = b.probes + 1
    save()
    return encode(1)
  end
  if b.state == 'closed' or b.state == 'disabled' then return encode(2) end
  return encode(0)
end

if op == 'probe' then  -- ARGV[18] gen, ARGV[19] s/f/i
  if b.state == 'half_open' and b.gen == tonumber(ARGV[18]) then
    local result = ARGV[19]
    if result == 'i' then
      b.probes = math.max(0, b.probes - 1)
      save()
    elseif result == 'f' then
      b.reopens = b.reopens + 1
      trip('probe failed')
    else
      b.ok = b.ok + 1
      if b.ok >= P.probes then
        b.reopens = 0
        to('closed', 'probes succeeded')
      else
        save()
      end
    end
  end
  return encode(0)
end

-- ARGV: 18 mode, 19 state, 20 until|'', 21 reopens|'', 22 reason, 23 open_for|''
if op == 'set' then
  local mode, new = ARGV[18], ARGV[19]
  local apply = mode == 'force'
    or (mode == 'early' and b.state == 'open')
    or (mode == 'merge' and new ~= 'closed' and (not b.exists or b.state == 'closed'))
  if apply then
    if ARGV[21] ~= '' then b.reopens = tonumber(ARGV[21]) end
    to(new, ARGV[22], tonumber(ARGV[23]), tonumber(ARGV[20]))
  end
  return encode(0)
end

return redis.error_reply('failover: unknown operation ' .. tostring(op))
"""

SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
