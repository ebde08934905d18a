/**
 * The plain-value parts of `trainkeeper logs` and `completion`: durations, the `--around` window of a fault,
 * and the completion table generated from the real command tree. The reading itself is tested on the SDK
 * client (test/adapters/aws/cloudwatch-logs.test.ts), on the local stand-in
 * (test/local/cloudwatch-logs-api.test.ts) and end to end from the installed package (package.test.ts).
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { bashCompletion, completionTable } from '../../cli/commands/completion.ts';
import { registerJobCommands } from '../../cli/commands/jobs.ts';
import { aroundWindow, parseDuration, registerLogsCommand } from '../../cli/commands/logs.ts';
import type { JobDocument } from '../../core/api/documents.ts';

const job = {
  metadata: { name: 'llama', namespace: 'team-a' },
  status: {
    remediations: [
      {
        generation: 2,
        faultTime: '2026-01-01T10:00:00.000Z',
        detectionTime: '2026-01-01T10:00:01.000Z',
        recoveryTime: '2026-01-01T10:00:05.000Z',
      },
      { generation: 3, faultTime: '2026-01-01T11:00:00.000Z', detectionTime: '2026-01-01T11:00:02.000Z' },
    ],
  },
} as unknown as JobDocument;
const ms = (iso: string) => Date.parse(iso);

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5m', 90_000],
  ])('reads %s as %i ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['10', 'm', '10 minutes', '-5m'])('rejects %s as a usage error', (text) => {
    expect(() => parseDuration(text)).toThrow('expected a duration');
  });
});

describe('aroundWindow', () => {
  it('spans a recovered fault from 60 s before it to 15 s after its recovery', () => {
    expect(aroundWindow(job, '2')).toEqual({
      startTime: ms('2026-01-01T09:59:00.000Z'),
      endTime: ms('2026-01-01T10:00:20.000Z'),
    });
  });

  it('ends 15 s after detection while the fault is still recovering', () => {
    expect(aroundWindow(job, '3').endTime).toBe(ms('2026-01-01T11:00:17.000Z'));
  });

  it('spans ±60 s around a time', () => {
    expect(aroundWindow(job, '2026-01-01T12:00:00Z')).toEqual({
      startTime: ms('2026-01-01T11:59:00.000Z'),
      endTime: ms('2026-01-01T12:01:00.000Z'),
    });
  });

  it('names the generations that have a fault when asked for another', () => {
    expect(() => aroundWindow(job, '7')).toThrow('no fault with generation 7 in llama');
    try {
      aroundWindow(job, '7');
    } catch (err) {
      expect((err as { issues: unknown }).issues).toEqual([
        { path: '--around', message: 'generations with a fault: 2, 3' },
      ]);
    }
  });

  it('rejects what is neither a generation nor a time', () => {
    expect(() => aroundWindow(job, 'yesterday')).toThrow('expected a generation or an ISO 8601 time');
  });
});

describe('completion', () => {
  const program = new Command('trainkeeper');
  registerJobCommands(program);
  registerLogsCommand(program);

  it('offers every top-level command, a group’s sub-commands and a command’s options', () => {
    const table = completionTable(program);
    expect(table.get('')).toEqual(expect.arrayContaining(['submit', 'describe', 'logs', 'rules', '--help']));
    expect(table.get('rules')).toEqual(expect.arrayContaining(['set']));
    expect(table.get('logs')).toEqual(
      expect.arrayContaining(['--rank', '--pod', '--since', '--around', '-f', '--follow', '--grep', '-n']),
    );
  });

  it('writes a bash script that registers the function for the program', () => {
    const script = bashCompletion(program);
    expect(script).toContain("'logs') words='");
    expect(script.trimEnd().split('\n').at(-1)).toBe('complete -F _trainkeeper_complete trainkeeper');
  });
});
