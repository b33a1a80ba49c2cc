"""The check-and-consume script of POS verification: one atomic call in the issuer's slot.

KEYS (all tagged ``{iss_..}``):
  1 program record (msgpack; ``code_policy`` is read with cmsgpack)   2 ``cardref`` hash
  3 ``terminals`` hash   4 ``members`` hash   5 verification log (stream)
  6 terminal failures   7 terminal lock   8 card failures   9 card lock
  10 TOTP state: start (ms) of the card's last accepted step
  11.. pairs (one-time token hash, its consumed marker), one per token candidate
ARGV:
  1 now ms   2 verdict ("" = check here)   3 method ("totp", or "" = a token or a number)
  4 card kind   5 holder "usr/crd"   6 period s   7 digits   8 step start ms   9 state TTL ms
  10 verification id   11 terminal id   12 store id   13 card id   14 "1" when a card
  lockout applies   15 the terminal's record as the caller knows it
  16 m, then m number indexes (``cardref`` fields), then m member indexes (``members`` fields)
Returns {outcome, retry after ms, member record or false, holder, matched number candidate,
the token hash's msgpack ``record`` or false}.  Two outcomes are for the caller only,
neither counted nor logged: ``terminal_gone`` (the terminal was revoked or changed since
the caller read it) and ``miss`` (token candidates matched neither a token of this program
nor a card number: the caller asks whether another program owns the token, then settles
with a verdict).
The lockout limits and the log's retention are constants rendered into the source
(``render``): fewer arguments to send and parse on every call.

Order: the terminal must be the one the caller knows; lockouts (a locked subject is refused
unchecked, not counted, not logged); then the policy as it is now (a code minted under
another policy is stale); then the card must still be held; then exactly once: the step must
be above the last accepted one, the token must not be consumed.  Every outcome but a replay
of an accepted code counts as a failure: a replay is a double scan, not a guess.  A token
record lives in its program's slot, so one found here belongs to this terminal's program.
"""

_LIMITS = """
local T_LIMIT, T_WINDOW, T_LOCK = %d, %d, %d
local C_LIMIT, C_WINDOW, C_LOCK = %d, %d, %d
local LOG_KEEP = %d
"""


_VERIFY = """
local now = ARGV[1]
if redis.call('HGET', KEYS[3], ARGV[11]) ~= ARGV[15] then
  return {'terminal_gone', 0, false, '', 0, false}
end
local tlock = redis.call('PTTL', KEYS[7])
if tlock > 0 then return {'too_many_attempts', tlock, false, '', 0, false} end
local card_limited = ARGV[14] == '1'
if card_limited then
  local clock = redis.call('PTTL', KEYS[9])
  if clock > 0 then return {'too_many_attempts', clock, false, '', 0, false} end
end

local m = tonumber(ARGV[16])
local function holds(index, who)
  local held = redis.call('HGET', KEYS[2], index)
  return held and string.find(' ' .. held .. ' ', ' ' .. who .. ' ', 1, true) ~= nil
end
local function stale(policy, mode, kind)
  return policy['mode'] ~= mode or (kind == 'self_added' and not policy['allow_self_added'])
end

local outcome, method, holder, card_id = ARGV[2], ARGV[3], ARGV[5], ARGV[13]
local matched, member_field, token_raw = 0, false, false
if outcome == '' then
  local raw = redis.call('GET', KEYS[1])
  local policy = raw and cmsgpack.unpack(raw)['code_policy']
  if not policy then
    outcome = 'code_unknown'
  elseif method == 'totp' then
    member_field = ARGV[17 + m]
    if stale(policy, 'totp', ARGV[4]) or policy['period_s'] ~= tonumber(ARGV[6])
        or policy['digits'] ~= tonumber(ARGV[7]) then
      outcome = 'code_expired'
    elseif not holds(ARGV[17], holder) then outcome = 'code_unknown'
    else
      local last = tonumber(redis.call('GET', KEYS[10]) or '-1')
      local step = tonumber(ARGV[8])
      if step == last then outcome = 'code_replayed'
      elseif step < last then outcome = 'code_expired'
      else
        redis.call('SET', KEYS[10], ARGV[8], 'PX', ARGV[9])
        outcome = 'accepted'
      end
    end
  else
    local used, token
    for i = 11, #KEYS, 2 do
      token = redis.call('HMGET', KEYS[i], 'user_id', 'card_id', 'kind', 'number_index',
                         'member_index', 'expires_at', 'record')
      if token[1] then used = i + 1; break end
    end
    if used then
      local user_id, kind, number_index, expires_at
      user_id, card_id, kind, number_index, member_field, expires_at, token_raw = unpack(token)
      method, holder = 'one_time', user_id .. '/' .. card_id
      local ttl = redis.call('PTTL', KEYS[used - 1])
      if tonumber(expires_at) * 1000 <= tonumber(now) or ttl <= 0 then outcome = 'code_expired'
      elseif stale(policy, 'one_time', kind) then outcome = 'code_expired'
      elseif not holds(number_index, holder) then outcome = 'code_unknown'
      elseif redis.call('SET', KEYS[used], '1', 'NX', 'PX', ttl) then outcome = 'accepted'
      else outcome = 'code_replayed' end
    else
      for i = 1, m do
        local held = redis.call('HGET', KEYS[2], ARGV[16 + i])
        if held then matched = i; holder = string.match(held, '%S+'); break end
      end
      if matched == 0 then
        for i = 1, m do
          if redis.call('HEXISTS', KEYS[4], ARGV[16 + m + i]) == 1 then matched = i; break end
        end
      end
      if matched == 0 then
        if #KEYS > 10 then return {'miss', 0, false, '', 0, false} end
        outcome, method = 'code_unknown', ''
      else
        method, member_field = 'static', ARGV[16 + m + matched]
        card_id = string.match(holder, '/(%S+)') or ''
        if policy['mode'] ~= 'static' then outcome = 'code_static_not_allowed'
        else outcome = 'accepted' end
      end
    end
  end
end

local function fail(count, lock, limit, window, duration)
  local n = redis.call('INCR', count)
  if n == 1 then redis.call('PEXPIRE', count, window) end
  if n >= limit then
    redis.call('SET', lock, '1', 'PX', duration)
    redis.call('DEL', count)
  end
end
if outcome ~= 'accepted' and outcome ~= 'code_replayed' then
  fail(KEYS[6], KEYS[7], T_LIMIT, T_WINDOW, T_LOCK)
  if card_limited then fail(KEYS[8], KEYS[9], C_LIMIT, C_WINDOW, C_LOCK) end
end

redis.call('XADD', KEYS[5], 'MINID', '~', tonumber(now) - LOG_KEEP, '*', 'v', ARGV[10],
  't', now, 'trm', ARGV[11], 'sto', ARGV[12], 'crd', card_id, 'out', outcome, 'm', method)
redis.call('PEXPIRE', KEYS[5], LOG_KEEP)

local member = false
if outcome == 'accepted' and member_field then
  member = redis.call('HGET', KEYS[4], member_field)
end
return {outcome, 0, member, holder, matched, token_raw}
"""


def render(terminal: tuple[int, int, int], card: tuple[int, int, int], log_keep_ms: int) -> str:
    """The script with its constants: (failures, window ms, lock ms) per terminal and card."""
    return _LIMITS % (*terminal, *card, log_keep_ms) + _VERIFY
