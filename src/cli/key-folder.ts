import type { Config } from '../config/config.js';
import { DiskKeySet } from '../keys/disk-key-set.js';
import { ConfigError } from '../shared/config-error.js';
import type { Io } from './io.js';

/**
 * The keys in keys.dir, undefined when there are none yet; warns of key files left out and of
 * files whose times still come from their mtime. addTimes: write the times into plain PEM files
 * where the folder allows it (commands that change the folder, and `keys list`). Throws
 * ConfigError for a broken folder.
 */
export async function loadKeySet(config: Config, io: Io, options: { addTimes: boolean }): Promise<DiskKeySet | undefined> {
  let keySet: DiskKeySet;
  try {
    keySet = await DiskKeySet.load(config.keys.dir, { generateIfEmpty: false, publishBeforeUseMs: publishBeforeUseMs(config), addTimes: options.addTimes });
  } catch (err) {
    if (err instanceof ConfigError && /holds no keys/.test(err.message)) return undefined;
    throw err;
  }
  for (const line of keySet.skipped()) io.err(`warning: ${line}`);
  // Reading only, the times are shown as read; commands that write say what they could not.
  if (!options.addTimes) return keySet;
  for (const line of keySet.untimed()) io.err(`warning: ${line}`);
  if (keySet.untimed().length > 0) {
    io.err(
      'warning: to give those keys times that last, write them elsewhere with `tollgate keys export --to-dir DIR` and put the files it writes in their place (in the Secret, for a Secret volume)',
    );
  }
  return keySet;
}

export function publishBeforeUseMs(config: Config): number {
  return config.keys.publish_before_use * 1000;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
