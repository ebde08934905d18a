/**
 * The kubeconfig the local plane writes holds the API's bearer token: only the user may read it, and it is
 * never written where another user could swap it.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSecretFile } from '../../../local/kube/index.ts';

const root = mkdtempSync(join(tmpdir(), 'tk-kubeconfig-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modeOf = (path: string) => statSync(path).mode & 0o7777;

describe.skipIf(process.platform === 'win32')('writeSecretFile (the kubeconfig writer)', () => {
  it('creates the file with mode 0600 and a missing directory with mode 0700, whatever the umask', () => {
    const previous = process.umask(0o000);
    return writeSecretFile(join(root, 'fresh', 'kubeconfig.yaml'), 'token: secret\n')
      .then(() => {
        expect(modeOf(join(root, 'fresh', 'kubeconfig.yaml'))).toBe(0o600);
        expect(modeOf(join(root, 'fresh'))).toBe(0o700);
        expect(readFileSync(join(root, 'fresh', 'kubeconfig.yaml'), 'utf8')).toBe('token: secret\n');
      })
      .finally(() => process.umask(previous));
  });

  it('replaces an existing world-readable file with a 0600 one', async () => {
    const file = join(root, 'existing.yaml');
    writeFileSync(file, 'old\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    await writeSecretFile(file, 'new\n');
    expect(modeOf(file)).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
  });

  it('refuses a directory other users may write to (they could swap the file)', async () => {
    const dir = mkdtempSync(join(root, 'shared-'));
    chmodSync(dir, 0o777);
    await expect(writeSecretFile(join(dir, 'kubeconfig.yaml'), 'x')).rejects.toThrow(
      /writable by other users/,
    );
    chmodSync(dir, 0o1777); // sticky, like /tmp: others cannot replace our file
    await writeSecretFile(join(dir, 'kubeconfig.yaml'), 'x');
    expect(modeOf(join(dir, 'kubeconfig.yaml'))).toBe(0o600);
  });
});
