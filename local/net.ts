/**
 * Port allocation for the local stand-ins and the tests that start real servers (DynamoDB Local,
 * Prometheus, pod agents).
 */
import { createServer } from 'node:net';

/**
 * Asks the OS for a free TCP port. It listens on every interface, so the port is free for processes that
 * bind 0.0.0.0 as well as loopback. (The agent keeps its own copy: it ships on its own, without local/.)
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
