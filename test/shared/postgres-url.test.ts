import { describe, expect, it } from 'vitest';
import { parsePostgresUrl } from '../../src/shared/postgres-url.js';

describe('parsePostgresUrl', () => {
  it('reads several hosts, the database, TLS files and target_session_attrs, and shows no password', () => {
    const t = parsePostgresUrl(
      'postgres://tollgate:p%40ss%3Aw0rd@db1:5433,[::1],10.0.0.7/tollgate?sslmode=verify-full&sslrootcert=/etc/ca.pem&target_session_attrs=read-write&connect_timeout=5',
    );
    expect(t.hosts).toEqual([
      { host: 'db1', port: 5433 },
      { host: '::1', port: 5432 },
      { host: '10.0.0.7', port: 5432 },
    ]);
    expect(t).toMatchObject({ database: 'tollgate', user: 'tollgate', password: 'p@ss:w0rd', sslmode: 'verify-full', sslrootcert: '/etc/ca.pem', targetSessionAttrs: 'read-write', connectTimeout: 5 });
    expect(t.display).toBe('postgres://tollgate@db1:5433,[::1]:5432,10.0.0.7:5432/tollgate');
    expect(parsePostgresUrl('postgresql://u@h/d')).toMatchObject({ sslmode: 'prefer', targetSessionAttrs: 'any', applicationName: 'tollgate' });
  });

  it.each([
    ['redis://h/d', /must start with postgres:\/\//],
    ['postgres://h/d', /names no user/],
    ['postgres://u:secret@h', /must name the database/],
    ['postgres://u:secret@h/', /must name the database/],
    ['postgres://u:secret@h1,,h2/d', /host that is empty or malformed/],
    ['postgres://u:secret@h:99999/d', /port outside 1-65535/],
    ['postgres://u:secret@h/d?sslmode=sometimes', /sslmode="sometimes"; it must be one of/],
    ['postgres://u:secret@h/d?target_session_attrs=standby', /the store writes/],
    ['postgres://u:secret@h/d?options=-csearch_path%3Dx', /parameter "options", which tollgate does not apply/],
    ['postgres://u:secret@h/d?sslmode=require&sslmode=disable', /sslmode twice/],
    ['postgres://u:secret@h/d?sslmode=verify-full&sslrootcert=ca.pem', /sslrootcert that is not an absolute path/],
    ['postgres://u:secret@h/d?sslrootcert=/ca.pem', /sslrootcert with sslmode=prefer/],
    ['postgres://u:secret@h/d?sslcert=/c.pem&sslmode=require', /sslcert and sslkey together/],
    ['postgres://u:secret@h/d?connect_timeout=0', /connect_timeout/],
    ['postgres://u:sec%ZZret@h/d', /malformed percent-encoding/],
    ['postgres://u:secret@h/d#frag', /fragment/],
  ])('refuses %s without repeating the password', (url, reason) => {
    let message = '';
    try {
      parsePostgresUrl(url);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(reason);
    expect(message).not.toMatch(/secret|sec%ZZret/);
  });
});
