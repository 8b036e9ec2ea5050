import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskKeySet, generateKeyFile, type KeySetEvent } from '../../src/keys/disk-key-set.js';
import { keyId, parseKeyFile, serializeKeyFile } from '../../src/keys/key-file.js';
import { tempDir } from '../helpers.js';
import { ecPem } from './odd-pem.js';
import { secretVolume, snapshot } from './secret-volume.js';

const MIN = 60_000;
const T0 = Date.parse('2026-11-01T12:00:00Z');
const clockAt = (ms: number) => ({ ms, now() { return this.ms; } });
const publishBeforeUseMs = 10 * MIN;

/** What list() says of each key, without the file names (which differ between copies). */
const state = (keys: DiskKeySet) => keys.list().map(({ kid, createdAt, signsFrom, timesFrom, use }) => ({ kid, createdAt, signsFrom, timesFrom, use }));


const kidOfPem = (pem: string) => keyId(createPrivateKey(pem));

describe('key times live in the key file', () => {
  it('keep every key state through a copy without -p and a rewrite with fresh mtimes', async () => {
    const dir = join(tempDir(), 'keys');
    const first = await DiskKeySet.load(dir, { generateIfEmpty: true, algorithm: 'ES256', publishBeforeUseMs, clock: clockAt(T0) });
    const [firstKid] = first.jwks().keys.map((k) => k.kid);
    const second = await generateKeyFile(dir, 'ES256', { now: T0 + 60 * MIN, publishBeforeUseMs });
    const third = await generateKeyFile(dir, 'ES256', { now: T0 + 120 * MIN, publishBeforeUseMs });
    expect([second.signsFrom, third.signsFrom]).toEqual([T0 + 70 * MIN, T0 + 130 * MIN]);
    // Between the third key's creation and its signs-from time.
    const clock = clockAt(T0 + 125 * MIN);
    const before = state(await DiskKeySet.load(dir, { generateIfEmpty: false, clock }));
    expect(before.map((k) => [k.kid, k.use, k.timesFrom])).toEqual([
      [third.kid, 'pending', 'file'],
      [second.kid, 'signing', 'file'],
      [firstKid, 'published', 'file'],
    ]);
    expect(before.map((k) => k.createdAt)).toEqual([T0 + 120 * MIN, T0 + 60 * MIN, T0]);
    // The first start's key too signs from publish_before_use after it was made.
    expect(before.map((k) => k.signsFrom)).toEqual([T0 + 130 * MIN, T0 + 70 * MIN, T0 + 10 * MIN]);

    // cp without -p: every file gets the time of the copy as its mtime.
    const copy = join(tempDir(), 'copy');
    mkdirSync(copy);
    for (const name of readdirSync(dir)) copyFileSync(join(dir, name), join(copy, name));
    expect(state(await DiskKeySet.load(copy, { generateIfEmpty: false, clock }))).toEqual(before);

    // Every file rewritten with mtimes in reverse order, as a restore or a Secret update may leave them.
    for (const [i, name] of readdirSync(dir).entries()) {
      writeFileSync(join(dir, name), readFileSync(join(dir, name)));
      utimesSync(join(dir, name), new Date(T0 + 1000 * MIN - i * MIN), new Date(T0 + 1000 * MIN - i * MIN));
    }
    expect(state(await DiskKeySet.load(dir, { generateIfEmpty: false, clock }))).toEqual(before);
    // And a later change of publish_before_use moves no key's time.
    expect(state(await DiskKeySet.load(dir, { generateIfEmpty: false, clock, publishBeforeUseMs: 0 }))).toEqual(before);
  });

  it('signs with the key whose signs-from time came last, whatever their creation times', async () => {
    const dir = tempDir();
    const [a, b] = [generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey];
    // b was made long ago elsewhere and imported to sign from T0 + 30 min.
    writeFileSync(join(dir, 'a.pem'), serializeKeyFile({ privateKey: a, created: T0, signsFrom: T0 + 10 * MIN }));
    writeFileSync(join(dir, 'b.pem'), serializeKeyFile({ privateKey: b, created: T0 - 1000 * MIN, signsFrom: T0 + 30 * MIN }));
    const clock = clockAt(T0 + 20 * MIN);
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false, clock });
    expect(keys.signingKey().kid).toBe(await keyId(a));
    expect(keys.list().map((k) => k.use)).toEqual(['pending', 'signing']);
    clock.ms = T0 + 30 * MIN;
    expect(keys.signingKey().kid).toBe(await keyId(b));
    // Before any key's time: the one whose time is nearest signs.
    clock.ms = T0;
    expect(keys.signingKey().kid).toBe(await keyId(a));
  });
});

describe('key files with one of the two times', () => {
  it('count signs-from from a created line, and created from the mtime when only signs-from is given', async () => {
    const dir = tempDir();
    const [a, b] = [ecPem(), ecPem()];
    writeFileSync(join(dir, 'a.pem'), `Tollgate-Created: 2026-11-01T12:00:00Z\n${a}`);
    writeFileSync(join(dir, 'b.pem'), `Tollgate-Signs-From: 2026-11-01T14:00:00Z\n${b}`);
    utimesSync(join(dir, 'a.pem'), new Date(T0 + 500 * MIN), new Date(T0 + 500 * MIN));
    utimesSync(join(dir, 'b.pem'), new Date(T0 + 60 * MIN), new Date(T0 + 60 * MIN));
    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false, publishBeforeUseMs, clock: clockAt(T0) });
    expect(state(keys).map((k) => [k.kid, k.createdAt, k.signsFrom, k.timesFrom])).toEqual([
      [await kidOfPem(b), T0 + 60 * MIN, T0 + 120 * MIN, 'mtime'],
      [await kidOfPem(a), T0, T0 + 10 * MIN, 'file'],
    ]);
    expect(keys.untimed()).toEqual([expect.stringMatching(/b\.pem: has no Tollgate-Created line/)]);
  });
});

describe('plain PEM files of an older tollgate', () => {
  it('are read from their mtime once, and given header lines with those times where the folder may be written', async () => {
    const dir = tempDir();
    const [oldPem, newPem] = [ecPem(), ecPem()];
    writeFileSync(join(dir, 'old.pem'), oldPem, { mode: 0o640 });
    writeFileSync(join(dir, 'new.pem'), newPem, { mode: 0o600 });
    utimesSync(join(dir, 'old.pem'), new Date(T0), new Date(T0));
    utimesSync(join(dir, 'new.pem'), new Date(T0 + 60 * MIN), new Date(T0 + 60 * MIN));
    const root = process.getuid?.() === 0;
    // Root stamping a file of the server's user gives it back to that user.
    if (root) chownSync(join(dir, 'old.pem'), 65_534, 65_534);
    const clock = clockAt(T0 + 65 * MIN);

    // Only read: nothing is written, and each file is reported.
    const readOnly = await DiskKeySet.load(dir, { generateIfEmpty: false, publishBeforeUseMs, clock });
    expect(readOnly.untimed()).toHaveLength(2);
    expect(readOnly.untimed()[0]).toMatch(/new\.pem: has no Tollgate-Created line, so its mtime \(2026-11-01T13:00:00\.000Z\) counts as its creation time/);
    expect(readFileSync(join(dir, 'old.pem'), 'utf8')).toBe(oldPem);
    const before = state(readOnly);
    expect(before.map((k) => [k.use, k.createdAt, k.signsFrom, k.timesFrom])).toEqual([
      ['pending', T0 + 60 * MIN, T0 + 70 * MIN, 'mtime'],
      ['signing', T0, T0 + 10 * MIN, 'mtime'],
    ]);

    const keys = await DiskKeySet.load(dir, { generateIfEmpty: false, publishBeforeUseMs, clock, addTimes: true });
    expect(keys.untimed()).toEqual([]);
    expect(state(keys)).toEqual(before.map((k) => ({ ...k, timesFrom: 'file' })));
    const stamped = readFileSync(join(dir, 'old.pem'), 'utf8');
    expect(stamped).toMatch(/^Tollgate-Created: 2026-11-01T12:00:00\.000Z\nTollgate-Signs-From: 2026-11-01T12:10:00\.000Z\n-----BEGIN PRIVATE KEY-----\n/);
    expect(await keyId(parseKeyFile(stamped).privateKey)).toBe(await kidOfPem(oldPem));
    const st = statSync(join(dir, 'old.pem'));
    expect(st.mode & 0o777).toBe(0o600);
    // The mtime stays, so an older tollgate still reads the same times.
    expect(st.mtimeMs).toBe(T0);
    if (root) expect([st.uid, st.gid]).toEqual([65_534, 65_534]);
    expect(readdirSync(dir).sort()).toEqual(['new.pem', 'old.pem']);

    // From now on the mtime no longer matters.
    const copy = tempDir();
    for (const name of readdirSync(dir)) copyFileSync(join(dir, name), join(copy, name));
    expect(state(await DiskKeySet.load(copy, { generateIfEmpty: false, publishBeforeUseMs: 0, clock }))).toEqual(state(keys));
  });
});

function watchEvents(keys: DiskKeySet) {
  const events: KeySetEvent[] = [];
  keys.watch((e) => events.push(e), 10);
  return {
    events,
    async next(): Promise<KeySetEvent> {
      const seen = events.length;
      for (let i = 0; i < 500; i++) {
        const found = events.slice(seen).find((e) => e.type !== 'rotated');
        if (found) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no event after ${JSON.stringify(events)}`);
    },
  };
}

describe('keys in a Kubernetes Secret volume', () => {
  const timed = (created: number) => serializeKeyFile({ privateKey: createPrivateKey(ecPem()), created, signsFrom: created + publishBeforeUseMs });

  it('are read through the links, its ..data entries are no keys, and nothing is ever written into it', async () => {
    const plain = ecPem();
    const a = timed(T0);
    const volume = secretVolume({ 'a.pem': a, 'plain.pem': plain });
    const before = snapshot(volume.dir);
    const keys = await DiskKeySet.load(volume.dir, { generateIfEmpty: true, publishBeforeUseMs, addTimes: true, clock: clockAt(T0 + 60 * MIN) });
    expect(snapshot(volume.dir)).toEqual(before);
    expect(keys.jwks().keys.map((k) => k.kid).sort()).toEqual([await kidOfPem(a), await kidOfPem(plain)].sort());
    const aKid = await kidOfPem(a);
    expect(keys.list().find((k) => k.kid === aKid)).toMatchObject({ createdAt: T0, signsFrom: T0 + publishBeforeUseMs, timesFrom: 'file' });
    expect(keys.untimed()).toEqual([expect.stringMatching(/plain\.pem: has no Tollgate-Created line.*could not write its times into it: the folder is a Kubernetes Secret volume$/)]);
  });

  it('follows an update that swaps ..data while every name stays, even with the same mtimes, and one that adds and removes keys', async () => {
    const [a1, b, a2, c] = [timed(T0), timed(T0 + MIN), timed(T0 + 2 * MIN), timed(T0 + 3 * MIN)];
    const sameMtime = new Date(T0);
    const volume = secretVolume({ 'a.pem': a1, 'b.pem': b });
    for (const name of ['a.pem', 'b.pem']) utimesSync(join(volume.dir, name), sameMtime, sameMtime);
    const keys = await DiskKeySet.load(volume.dir, { generateIfEmpty: false, publishBeforeUseMs, addTimes: true });
    const watched = watchEvents(keys);

    // Same names, same sizes, same mtimes: only the content tells the new a.pem apart.
    volume.update({ 'a.pem': a2, 'b.pem': b }, sameMtime);
    expect(await watched.next()).toEqual({ type: 'reloaded', kids: [await kidOfPem(a2), await kidOfPem(b)], skipped: [], untimed: [] });

    volume.update({ 'b.pem': b, 'c.pem': c });
    expect(await watched.next()).toMatchObject({ type: 'reloaded', kids: [await kidOfPem(c), await kidOfPem(b)] });
    keys.close();
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([await kidOfPem(c), await kidOfPem(b)]);
    // Nothing of tollgate's own was left in the volume.
    expect(readdirSync(volume.dir).sort()).toEqual(['..2026_11_01_12_00_00.000000003', '..data', 'b.pem', 'c.pem']);
  });

  it('says once of each plain PEM file whose times come from its mtime, again only when the mtime changes', async () => {
    const plain = ecPem();
    const volume = secretVolume({ 'plain.pem': plain, 'b.pem': timed(T0) });
    const keys = await DiskKeySet.load(volume.dir, { generateIfEmpty: false, publishBeforeUseMs, addTimes: true });
    expect(keys.untimed()).toHaveLength(1);
    const watched = watchEvents(keys);
    // A new Secret version with the same plain file at the same mtime: not said again.
    const mtime = statSync(join(volume.dir, 'plain.pem')).mtime;
    volume.update({ 'plain.pem': plain, 'b.pem': timed(T0 + MIN) }, mtime);
    expect(await watched.next()).toMatchObject({ type: 'reloaded', untimed: [] });
    // The kubelet rewrote it with a fresh mtime: the key's times moved, which is said.
    volume.update({ 'plain.pem': plain, 'b.pem': timed(T0 + MIN) });
    expect(await watched.next()).toMatchObject({ type: 'reloaded', untimed: [expect.stringMatching(/plain\.pem: has no Tollgate-Created line/)] });
    keys.close();
  });
});
