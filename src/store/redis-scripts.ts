/**
 * The Lua scripts run atomically in Redis, so no other instance sees a half-written record or
 * interleaves between a check and a write.
 */
export const TOKEN_SCRIPTS = {
  // KEYS[1]: the token's key. ARGV[1]: exp in ms. ARGV[2..]: field, value, …
  // Created only if absent: a second record under one jti is refused, never merged.
  tollgateRecord: {
    numberOfKeys: 1,
    lua: `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`,
  },
  // KEYS[1]: the token's key. ARGV[1]: the prefix of client-revoked keys.
  // The record and its client's revocation time in one round trip. The client's key is known
  // only once the record is read, which a single Redis server allows and Cluster would not.
  tollgateFind: {
    numberOfKeys: 1,
    lua: `local r = redis.call('HMGET', KEYS[1], 'clientId', 'scope', 'aud', 'iat', 'exp', 'digest', 'revokedAt', 'cnf', 'jkt')
if not r[1] then return false end
r[10] = redis.call('GET', ARGV[1] .. r[1])
return r`,
  },
  // Cluster. KEYS[1]: the token's key; KEYS[2]: the hash of revocation times of the clients
  // under the token's tag, in the same slot. Both keys are declared, so that during a slot
  // migration Redis redirects (ASK) or asks to retry (TRYAGAIN) rather than read half a slot.
  tollgateFindTagged: {
    numberOfKeys: 2,
    lua: `local r = redis.call('HMGET', KEYS[1], 'clientId', 'scope', 'aud', 'iat', 'exp', 'digest', 'revokedAt', 'cnf', 'jkt')
if not r[1] then return false end
r[10] = redis.call('HGET', KEYS[2], r[1])
return r`,
  },
  // KEYS[1]: the token's key. ARGV[1]: revocation time in ms. The first revocation time stays;
  // an unknown (or already expired) jti is not recreated.
  tollgateRevoke: {
    numberOfKeys: 1,
    lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revokedAt', ARGV[1])
return 1`,
  },
  // KEYS[1]: the client's revoked-before key. ARGV[1]: the time in ms; ARGV[2]: when it may go.
  // The line only ever moves forward, whatever order two revocations arrive in.
  tollgateRevokeClient: {
    numberOfKeys: 1,
    lua: `local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`,
  },
  // Cluster. KEYS[1]: the hash of revocation times under the client's tag. ARGV[1]: the client;
  // ARGV[2]: the time in ms; ARGV[3]: when it may go. As tollgateRevokeClient; the hash lives
  // until the latest of its times may go (Redis 7.0 cannot expire one field).
  tollgateRevokeClientTagged: {
    numberOfKeys: 1,
    lua: `local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
if current >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) else redis.call('PEXPIREAT', KEYS[1], ARGV[3], 'GT') end
return 1`,
  },
  // KEYS: the counters. ARGV[1]: the window in ms; ARGV[1 + i]: the limit of KEYS[i]. Adds one
  // to every counter if each is below its limit, else to none and names the first that is not.
  // A fixed window from the first hit: the expiry is set only when a counter is created.
  // Replies {1, count1, ttl1, count2, ttl2, …} or {0, i, count, ttl}.
  tollgateReserveHits: {
    lua: `for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0') or 0
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then redis.call('PEXPIRE', key, ARGV[1]); ttl = tonumber(ARGV[1]) end
    return {0, i - 1, n, ttl}
  end
end
local out = {1}
for _, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[1]); ttl = tonumber(ARGV[1]) end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out`,
  },
  // KEYS: the counters. ARGV[1]: the window in ms; ARGV[1 + i]: how long KEYS[i]'s window had
  // left, by the caller's clock, when its hit was reserved, as of now. A window begun after
  // that one ended lasts at least a whole window longer, which tells the two apart whatever
  // the difference between the caller's clock and Redis's. DECR keeps the counter's expiry.
  tollgateReleaseHits: {
    lua: `for i, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl > 0 and ttl < tonumber(ARGV[i + 1]) + tonumber(ARGV[1]) / 2 and (tonumber(redis.call('GET', key) or '0') or 0) > 0 then
    redis.call('DECR', key)
  end
end
return 1`,
  },
  // Signing keys. KEYS[1]: the hash of records (kid -> JSON); KEYS[2]: the generation. Both
  // under one hash tag, so that in a cluster each script touches one slot.
  // Reply: {generation, {kid, json, kid, json, …}}, read together.
  tollgateListSigningKeys: {
    numberOfKeys: 2,
    lua: `return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}`,
  },
  // ARGV[1]: the kid; ARGV[2]: the record as JSON; ARGV[3]: '1' to add only into an empty set.
  tollgateAddSigningKey: {
    numberOfKeys: 2,
    lua: `if ARGV[3] == '1' and redis.call('HLEN', KEYS[1]) > 0 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1`,
  },
  // ARGV[1]: the kid.
  tollgateRemoveSigningKey: {
    numberOfKeys: 2,
    lua: `if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1`,
  },
  // ARGV[1]: the generation the new records were made from; ARGV[2..]: kid, JSON, … Every
  // record or none, and none once anything changed since that generation.
  tollgateResealSigningKeys: {
    numberOfKeys: 2,
    lua: `if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('INCR', KEYS[2])
return 1`,
  },
} as const;

/** The scripts as ioredis adds them to a client, one method each. */
export interface TokenScripts {
  tollgateRecord(key: string, expMs: string, ...fields: string[]): Promise<number>;
  tollgateFind(key: string, clientKeyPrefix: string): Promise<(string | null)[] | null>;
  tollgateFindTagged(key: string, revokedKey: string): Promise<(string | null)[] | null>;
  tollgateRevoke(key: string, at: string): Promise<number>;
  tollgateRevokeClientTagged(key: string, clientId: string, at: string, expireAt: string): Promise<number>;
  tollgateRevokeClient(key: string, at: string, expireAt: string): Promise<number>;
  /** Without a fixed number of keys: the first argument says how many keys follow. */
  tollgateReserveHits(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number[]>;
  tollgateReleaseHits(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number>;
  tollgateListSigningKeys(recordsKey: string, generationKey: string): Promise<[string, string[]]>;
  tollgateAddSigningKey(recordsKey: string, generationKey: string, kid: string, json: string, onlyIfNone: '0' | '1'): Promise<number>;
  tollgateRemoveSigningKey(recordsKey: string, generationKey: string, kid: string): Promise<number>;
  tollgateResealSigningKeys(recordsKey: string, generationKey: string, generation: string, ...kidsAndJson: string[]): Promise<number>;
}
