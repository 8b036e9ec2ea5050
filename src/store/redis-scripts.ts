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
    lua: `local r = redis.call('HMGET', KEYS[1], 'clientId', 'scope', 'aud', 'iat', 'exp', 'digest', 'revokedAt', 'cnf')
if not r[1] then return false end
r[9] = redis.call('GET', ARGV[1] .. r[1])
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
  // KEYS[1]: the counter. ARGV[1]: the window in ms. A fixed window from the first hit: the
  // expiry is set only when the counter is created.
  tollgateCountHit: {
    numberOfKeys: 1,
    lua: `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`,
  },
} as const;

/** The scripts as ioredis adds them to a client, one method each. */
export interface TokenScripts {
  tollgateRecord(key: string, expMs: string, ...fields: string[]): Promise<number>;
  tollgateFind(key: string, clientKeyPrefix: string): Promise<(string | null)[] | null>;
  tollgateRevoke(key: string, at: string): Promise<number>;
  tollgateRevokeClient(key: string, at: string, expireAt: string): Promise<number>;
  tollgateCountHit(key: string, windowMs: string): Promise<[number, number]>;
}
