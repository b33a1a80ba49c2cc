"""The check-and-consume script of POS verification: one atomic call in the issuer's slot.

KEYS (all tagged ``{iss_..}``):
  1 program record (msgpack; ``code_policy`` is read with cmsgpack)   2 ``cardref`` hash
  3 terminal failures   4 terminal lock   5 card failures   6 card lock
  7 code state (totp: last accepted step start, ms; one_time: consumed marker)
  8 verification log (stream)   9.. member records, one per number candidate
ARGV:
  1 now ms   2 verdict ("" = check here)   3 method   4 card kind   5 holder "usr/crd"
  6 period s   7 digits   8 step start ms   9 state TTL ms   10 verification id
  11 terminal id   12 store id   13 card id   14 "1" when a card lockout applies
  15.. number indexes
Returns {outcome, retry after ms, member record or false, holder, matched candidate}.
The lockout limits and the log's retention are constants rendered into the source
(``render``): fewer arguments to send and parse on every call.

Order: lockouts first (a locked subject is refused unchecked, not counted, not logged);
then the policy as it is now (a code minted under another policy is stale); then the card
must still be held; then exactly once: the step must be above the last accepted one, the
token must not be consumed.  Every outcome but a replay of an accepted code counts as a
failure: a replay is a double scan, not a guess.
"""

_LIMITS = """
local T_LIMIT, T_WINDOW, T_LOCK = %d, %d, %d
local C_LIMIT, C_WINDOW, C_LOCK = %d, %d, %d
local LOG_KEEP = %d
"""


_VERIFY = """
local now = ARGV[1]
local tlock = redis.call('PTTL', KEYS[4])
if tlock > 0 then return {'too_many_attempts', tlock, false, '', 0} end
local card_limited = ARGV[14] == '1'
if card_limited then
  local clock = redis.call('PTTL', KEYS[6])
  if clock > 0 then return {'too_many_attempts', clock, false, '', 0} end
end

local function holds(index, who)
  local held = redis.call('HGET', KEYS[2], index)
  return held and string.find(' ' .. held .. ' ', ' ' .. who .. ' ', 1, true) ~= nil
end

local outcome, method, holder, matched = ARGV[2], ARGV[3], ARGV[5], 0
if outcome == '' then
  local raw = redis.call('GET', KEYS[1])
  local policy = raw and cmsgpack.unpack(raw)['code_policy']
  if not policy then
    outcome = 'code_unknown'
  elseif method == 'static' then
    for i = 15, #ARGV do
      local held = redis.call('HGET', KEYS[2], ARGV[i])
      if held then matched = i - 14; holder = string.match(held, '%S+'); break end
    end
    if matched == 0 then
      for i = 9, #KEYS do
        if redis.call('EXISTS', KEYS[i]) == 1 then matched = i - 8; break end
      end
    end
    if matched == 0 then outcome = 'code_unknown'
    elseif policy['mode'] ~= 'static' then outcome = 'code_static_not_allowed'
    else outcome = 'accepted' end
  elseif policy['mode'] ~= method
      or (method == 'totp' and (policy['period_s'] ~= tonumber(ARGV[6])
                                or policy['digits'] ~= tonumber(ARGV[7])))
      or (ARGV[4] == 'self_added' and not policy['allow_self_added']) then
    outcome = 'code_expired'
  elseif not holds(ARGV[15], holder) then
    outcome = 'code_unknown'
  elseif method == 'totp' then
    local last = tonumber(redis.call('GET', KEYS[7]) or '-1')
    local step = tonumber(ARGV[8])
    if step == last then outcome = 'code_replayed'
    elseif step < last then outcome = 'code_expired'
    else
      redis.call('SET', KEYS[7], ARGV[8], 'PX', ARGV[9])
      outcome = 'accepted'
      matched = 1
    end
  elseif redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[9]) then
    outcome = 'accepted'
    matched = 1
  else
    outcome = 'code_replayed'
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
  fail(KEYS[3], KEYS[4], T_LIMIT, T_WINDOW, T_LOCK)
  if card_limited then fail(KEYS[5], KEYS[6], C_LIMIT, C_WINDOW, C_LOCK) end
end

local card_id = ARGV[13]
if method == 'static' then
  card_id = string.match(holder, '/(%S+)') or ''
  if outcome == 'code_unknown' then method = '' end
end
redis.call('XADD', KEYS[8], 'MINID', '~', tonumber(now) - LOG_KEEP, '*', 'v', ARGV[10],
  't', now, 'trm', ARGV[11], 'sto', ARGV[12], 'crd', card_id, 'out', outcome, 'm', method)
redis.call('PEXPIRE', KEYS[8], LOG_KEEP)

local member = false
if outcome == 'accepted' and matched > 0 and KEYS[8 + matched] then
  member = redis.call('GET', KEYS[8 + matched])
end
return {outcome, 0, member, holder, matched}
"""


def render(terminal: tuple[int, int, int], card: tuple[int, int, int], log_keep_ms: int) -> str:
    """The script with its constants: (failures, window ms, lock ms) per terminal and card."""
    return _LIMITS % (*terminal, *card, log_keep_ms) + _VERIFY
