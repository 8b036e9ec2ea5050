import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { listHas, toBlockList } from '../../src/shared/address-list.js';

// listHas once unwrapped ::ffff:a.b.c.d itself before asking the BlockList. Node's BlockList
// already matches an IPv4-mapped IPv6 address against IPv4 rules (and the reverse): these tests
// hold the platform to that, on the oldest Node package.json allows as on any later one.
describe('net.BlockList, as listHas relies on it', () => {
  it('matches an IPv4-mapped IPv6 peer against an IPv4 block, in every spelling', () => {
    const list = new BlockList();
    list.addSubnet('10.0.0.0', 8, 'ipv4');
    expect(list.check('::ffff:10.0.0.1', 'ipv6')).toBe(true);
    expect(list.check('::FFFF:10.0.0.1', 'ipv6')).toBe(true);
    expect(list.check('::ffff:a00:1', 'ipv6')).toBe(true);
    expect(list.check('::ffff:11.0.0.1', 'ipv6')).toBe(false);
  });

  it('matches an IPv4 peer against an IPv4-mapped IPv6 rule', () => {
    const list = new BlockList();
    list.addAddress('::ffff:10.0.0.1', 'ipv6');
    expect(list.check('10.0.0.1', 'ipv4')).toBe(true);
    expect(list.check('10.0.0.2', 'ipv4')).toBe(false);
  });
});

describe('listHas', () => {
  const list = toBlockList(['10.0.0.0/8', '127.0.0.1', '2001:db8::/32']);

  it('finds IPv4 and IPv6 peers, and an IPv4 peer on a dual-stack socket', () => {
    expect(listHas(list, '10.1.2.3')).toBe(true);
    expect(listHas(list, '127.0.0.1')).toBe(true);
    expect(listHas(list, '::ffff:127.0.0.1')).toBe(true);
    expect(listHas(list, '::ffff:10.200.0.1')).toBe(true);
    expect(listHas(list, '2001:db8::7')).toBe(true);
  });

  it('finds no other address', () => {
    for (const ip of ['127.0.0.2', '11.0.0.1', '::ffff:11.0.0.1', '::1', '2001:db9::1', '::10.0.0.1']) expect(listHas(list, ip), ip).toBe(false);
  });
});
