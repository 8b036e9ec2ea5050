import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, docFiles, links, read, ROOT } from './markdown.js';

// Every relative link in README.md and docs/ must lead somewhere: to a file of the repository,
// and, with a #fragment, to a heading of that page.

/**
 * Guides written on other branches at the same time, linked from the README's map ahead of
 * them. A link to one of these may point nowhere until it lands; once the file exists, its
 * links are checked like any other. Remove an entry once its guide is in.
 */
const EXTERNAL = /^(https?:|mailto:)/;

interface Problem {
  where: string;
  target: string;
  reason: string;
}

function check(file: string): Problem[] {
  const problems: Problem[] = [];
  for (const link of links(file, read(file))) {
    if (EXTERNAL.test(link.target)) continue;
    const [path, fragment] = link.target.split('#', 2) as [string, string | undefined];
    const target = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
    if (target.startsWith('..')) {
      problems.push({ ...link, reason: 'leaves the repository' });
      continue;
    }
    if (!existsSync(join(ROOT, target))) {
      problems.push({ ...link, reason: `${target} does not exist` });
      continue;
    }
    if (fragment === undefined || !target.endsWith('.md') || statSync(join(ROOT, target)).isDirectory()) continue;
    if (!anchors(read(target)).has(fragment)) problems.push({ ...link, reason: `${target} has no heading #${fragment}` });
  }
  return problems;
}

describe('relative links in README.md and docs/', () => {
  it('all lead to a file of the repository, and to a heading of it where they name one', () => {
    const files = [...docFiles(), 'CHANGELOG.md', 'SECURITY.md'].filter((f) => existsSync(join(ROOT, f)));
    const problems = files.flatMap(check).map((p) => `${p.where}: (${p.target}) ${p.reason}`);
    expect(problems).toEqual([]);
    expect(files.flatMap((f) => links(f, read(f))).length).toBeGreaterThan(50);
  });
});

describe('anchors', () => {
  it('names headings as GitHub does: lower case, punctuation dropped, spaces to dashes, repeats numbered', () => {
    const page = '# Title\n## private_key_jwt (RFC 7523 §2.2)\n## Key compromise: rotate and prune at once\n```sh\n# not a heading\n```\n## Title\n';
    expect([...anchors(page)]).toEqual(['title', 'private_key_jwt-rfc-7523-22', 'key-compromise-rotate-and-prune-at-once', 'title-1']);
  });
});
