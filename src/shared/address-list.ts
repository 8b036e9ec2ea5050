import { BlockList, isIP, SocketAddress } from 'node:net';

/** An IPv4 or IPv6 address or CIDR block, parsed; undefined when the text is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** A BlockList of addresses and CIDR blocks that parseCidr has already accepted. */
export function toBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (cidr === undefined) throw new TypeError(`not an address or CIDR block: ${entry}`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return list;
}

/**
 * Whether ip is in list. An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) matches IPv4
 * blocks: BlockList itself compares IPv4-mapped addresses as IPv4 (test/address-list.test.ts).
 */
export function listHas(list: BlockList, ip: string): boolean {
  return list.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
}

/**
 * One spelling per IP address (2001:DB8:0:0:0:0:0:1 and 2001:db8::1 give 2001:db8::1), or
 * undefined when the text is not an address. A zone (fe80::1%eth0) is not part of an address.
 */
export function canonicalIp(text: string): string | undefined {
  const version = isIP(text);
  if (version === 0 || text.includes('%')) return undefined;
  return new SocketAddress({ address: text, family: version === 4 ? 'ipv4' : 'ipv6' }).address;
}
