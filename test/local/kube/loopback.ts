/**
 * Whether a local listener is reachable from other machines: the host's own non-loopback addresses stand
 * in for the network (a server bound to 127.0.0.1 refuses them; one bound to 0.0.0.0 accepts them).
 */
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The host's non-internal IPv4 and IPv6 addresses (empty on a machine with loopback only). */
export function externalAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !a.address.startsWith('fe80:'))
    .map((a) => a!.address);
}

/** The addresses among `externalAddresses()` that accept a TCP connection on `port`. */
export async function acceptedFromOutside(port: number): Promise<string[]> {
  const accepted: string[] = [];
  for (const host of externalAddresses()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port, timeout: 2_000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) accepted.push(host);
  }
  return accepted;
}
