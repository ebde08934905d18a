/**
 * The local stand-in's CloudWatch Logs filter-pattern semantics. Cases come from the CloudWatch Logs User
 * Guide, "Filter pattern syntax for metric filters, subscription filters, filter log events, and Live
 * Tail" (FilterAndPatternSyntax): its unstructured examples (`ERROR`, `"ERROR" - "Exiting"`, `ERROR
 * Exception`, `?ERROR ?WARN`, `ERROR -WARN`) and its JSON examples (the CloudTrail-like event, the compound
 * conditions over the `user`/`users`/`actions`/`coordinates` event, numeric comparisons). Cases marked
 * "(ours)" are TrainKeeper's own patterns over Container Insights records.
 */
import { describe, expect, it } from 'vitest';
import {
  compileFilterPattern,
  FilterPatternError,
  parseFilterPattern,
} from '../../local/logs/filter-pattern.ts';

const matches = (pattern: string, message: string) => compileFilterPattern(pattern)(message);

describe('unstructured term patterns (User Guide: matching terms in unstructured log events)', () => {
  it.each([
    ['ERROR', '[ERROR] A fatal exception has occurred', true],
    ['ERROR', 'Exiting with ERRORCODE: -1', true],
    ['ERROR', '[error] lower case is another term', false],
    ['"ERROR" - "Exiting"', '[ERROR] A fatal exception has occurred', true],
    ['"ERROR" - "Exiting"', 'Exiting with ERRORCODE: -1', false],
    ['ERROR Exception', '[ERROR] Caught IllegalArgumentException', true],
    ['ERROR Exception', '[ERROR] Unhandled Exception', true],
    ['ERROR Exception', '[ERROR] A fatal failure', false],
    ['Failed to process the request', '[WARN] Failed to process the request', true],
    ['Failed to process the request', '[ERROR] Unable to continue: Failed to process the request', true],
    ['"Failed to process the request"', '[WARN] Failed to process a request', false],
    ['?ERROR ?WARN', 'ERROR WARN message', true],
    ['?ERROR ?WARN', 'ERROR message', true],
    ['?ERROR ?WARN', 'WARN message', true],
    ['?ERROR ?WARN', 'INFO message', false],
    ['ERROR WARN', 'ERROR WARN message', true],
    ['ERROR WARN', 'ERROR message', false],
    ['ERROR -WARN', 'ERROR message', true],
    ['ERROR -WARN', 'ERROR WARN message', false],
    ['ERROR -WARN', 'WARN message', false],
    // (ours) the previous default, over a Fluent Bit record whose `log` is an agent status line
    [
      '?"trainkeeper.dev/job" ?"agent/v1"',
      JSON.stringify({ log: '{"trainkeeper":"agent/v1","kind":"heartbeat"}', kubernetes: {} }),
      true,
    ],
    [
      '?"trainkeeper.dev/job" ?"agent/v1"',
      JSON.stringify({ log: '[default0]:step 1', kubernetes: { pod_name: 'p' } }),
      false,
    ],
    ['"quoted \\" quote"', 'a quoted " quote here', true],
  ])('%s on %j matches: %s', (pattern, message, expected) => {
    expect(matches(pattern, message)).toBe(expected);
  });

  it('matches everything with the empty pattern (also only spaces)', () => {
    expect(matches('', 'anything')).toBe(true);
    expect(matches('   ', '')).toBe(true);
    expect(parseFilterPattern('')).toEqual({ kind: 'everything' });
  });
});

/** The guide's CloudTrail-like example event. */
const TRAIL = JSON.stringify({
  eventType: 'UpdateTrail',
  sourceIPAddress: '111.111.111.111',
  arrayKey: ['value', 'another value'],
  objectList: [
    { name: 'a', id: 1 },
    { name: 'b', id: 2 },
  ],
  SomeObject: null,
  ThisFlag: true,
});

/** The guide's compound-condition example event. */
const USERS = JSON.stringify({
  user: { id: 1, email: 'John.Stiles@example.com' },
  users: [
    { id: 2, email: 'John.Doe@example.com' },
    { id: 3, email: 'Jane.Doe@example.com' },
  ],
  actions: ['GET', 'PUT', 'DELETE'],
  coordinates: [
    [0, 1, 2],
    [4, 5, 6],
    [7, 8, 9],
  ],
});

/** (ours) A stock Container Insights record, Labels Off. */
const RECORD = JSON.stringify({
  time: '2026-12-05T10:00:00.123456789Z',
  stream: 'stdout',
  _p: 'F',
  log: '[default0]:step 12 | Loss: 2.1',
  kubernetes: {
    pod_name: 'llama-pods-0-0',
    namespace_name: 'team-a',
    container_name: 'pytorch',
  },
});

describe('JSON patterns (User Guide: matching terms in JSON log events)', () => {
  it.each([
    ['{ $.eventType = "UpdateTrail" }', TRAIL, true],
    ['{ $.eventType = UpdateTrail }', TRAIL, true],
    ['{ $.eventType = "PutTrail" }', TRAIL, false],
    ['{ $.sourceIPAddress != 123.123.* }', TRAIL, true],
    ['{ $.sourceIPAddress = 111.111.* }', TRAIL, true],
    ['{ $.eventType = "*Trail" }', TRAIL, true],
    ['{ $.eventType = "Update*" }', TRAIL, true],
    ['{ $.eventType = "*dateTr*" }', TRAIL, true],
    ['{ $.eventType = "Upd*Trail" }', TRAIL, false],
    ['{ $.eventType = * }', TRAIL, true],
    ['{ $.arrayKey[0] = "value" }', TRAIL, true],
    ['{ $.arrayKey[1] = "value" }', TRAIL, false],
    ['{ $.objectList[1].id = 2 }', TRAIL, true],
    ['{ $.objectList[1].id = 1 }', TRAIL, false],
    ['{ $.SomeObject IS NULL }', TRAIL, true],
    ['{ $.SomeOtherObject NOT EXISTS }', TRAIL, true],
    ['{ $.eventType EXISTS }', TRAIL, true],
    ['{ $.ThisFlag IS TRUE }', TRAIL, true],
    ['{ $.ThisFlag IS FALSE }', TRAIL, false],
    ['{ $.arrayKey = "value" }', TRAIL, false],
    ['{ $.arrayKey != "value" }', TRAIL, false],
    ['{ $.missing != "value" }', TRAIL, false],
    ['{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', USERS, true],
    ['{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', USERS, false],
    [
      '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
      USERS,
      true,
    ],
    [
      '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }',
      USERS,
      false,
    ],
    ['{ $.coordinates[1][2] = 6 }', USERS, true],
    ['{ $.user.id >= 1 }', USERS, true],
    ['{ $.user.id > 1 }', USERS, false],
    ['{ $.users[1].id < 10e3 }', USERS, true],
    ['{ $.users[1].id <= 2.5 }', USERS, false],
    ['{ $.user.id != 500 }', USERS, true],
    ['{ $.user.id > +0 }', USERS, true],
    ['{ $.kubernetes.namespace_name = "team-a" || $.kubernetes.namespace_name = "team-b" }', RECORD, true],
    ['{ $.kubernetes.namespace_name = "team-b" || $.kubernetes.namespace_name = "team-c" }', RECORD, false],
    ['{ $.kubernetes.namespace_name = "team-a" }', '[default0]:step 12, not JSON', false],
    ['{ $.kubernetes.namespace_name = "team-a" }', '{"truncated": "record', false],
  ])('%s matches: %s', (pattern, message, expected) => {
    expect(matches(pattern, message)).toBe(expected);
  });
});

describe('patterns outside the supported subset', () => {
  it.each([
    ['%AUTHORIZED%', 'regular-expression'],
    ['[ip, user, username, timestamp, request, status_code = 4*, bytes]', 'space-delimited'],
    ['trainkeeper.dev/job', 'double quotes'],
    ['?ERROR WARN', 'mixed'],
    ['-WARN', 'only `-` terms'],
    ['"unterminated', 'unterminated'],
    ['{ $.a = "x" ', 'expected }'],
    ['{ $.a ~ "x" }', 'expected ='],
    ['{ a = "x" }', 'expected $'],
    ['{ $.a > "x" }', 'compares numbers'],
    ['{ $.a = "x" } trailing', 'after the closing'],
    ['{ $.a = "x" | $.b = 1 }', 'expected }'],
  ])('%s is refused (%s)', (pattern, reason) => {
    expect(() => parseFilterPattern(pattern)).toThrow(FilterPatternError);
    expect(() => parseFilterPattern(pattern)).toThrow(reason);
  });
});
