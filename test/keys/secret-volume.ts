import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';

/**
 * A folder laid out as the kubelet lays out a Secret volume: the files in a timestamped folder,
 * `..data` a link to it, and each key a link through `..data`. update() swaps in a new version
 * as the kubelet does: new folder, `..data_tmp` link renamed over `..data`, links added or
 * removed, old folder removed.
 */
export function secretVolume(files: Record<string, string>, dir = tempDir()) {
  mkdirSync(dir, { recursive: true });
  let version = 0;
  let current = '';
  const write = (contents: Record<string, string>, mtime?: Date) => {
    const ts = `..2026_11_01_12_00_00.00000000${++version}`;
    mkdirSync(join(dir, ts));
    for (const [name, text] of Object.entries(contents)) {
      writeFileSync(join(dir, ts, name), text, { mode: 0o644 });
      if (mtime) utimesSync(join(dir, ts, name), mtime, mtime);
    }
    return ts;
  };
  current = write(files);
  symlinkSync(current, join(dir, '..data'));
  for (const name of Object.keys(files)) symlinkSync(`..data/${name}`, join(dir, name));
  return {
    dir,
    update(next: Record<string, string>, mtime?: Date) {
      const ts = write(next, mtime);
      symlinkSync(ts, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      for (const name of Object.keys(next)) if (!(name in files)) symlinkSync(`..data/${name}`, join(dir, name));
      for (const name of Object.keys(files)) if (!(name in next)) rmSync(join(dir, name));
      rmSync(join(dir, current), { recursive: true });
      current = ts;
      files = next;
    },
  };
}

/**
 * Every entry under dir (links as their target, files as their content, mtime and mode), to
 * show that nothing was written.
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isSymbolicLink()) out[name] = `-> ${readlinkSync(path)}`;
    else if (st.isDirectory()) for (const [k, v] of Object.entries(snapshot(path))) out[`${name}/${k}`] = v;
    else out[name] = `${readFileSync(path, 'utf8')} @${st.mtimeMs} mode ${(st.mode & 0o777).toString(8)}`;
  }
  return out;
}
