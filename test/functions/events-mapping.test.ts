import { describe, expect, it } from 'vitest';
import { HyperPodClusterEventDetail, healthFromClusterEvent } from '../../functions/events.ts';
import { fixtureJson } from './fixtures.ts';

const detail = (over: Record<string, unknown>) =>
  HyperPodClusterEventDetail.parse({
    EventDetails: {
      EventId: '83ea0bb5-be77-45e8-a458-0a87f778a205',
      ClusterName: 'sample-cluster',
      InstanceId: 'i-0391f86fa0fe0d465',
      ResourceType: 'Instance',
      EventTime: 1748794825350,
      ...over,
    },
  });

describe('healthFromClusterEvent', () => {
  it('reads the recorded reboot event as UnschedulablePendingReboot', () => {
    const event = fixtureJson<{ detail: unknown }>('events/hyperpod-instance-reboot.json');
    expect(healthFromClusterEvent(HyperPodClusterEventDetail.parse(event.detail))).toBe(
      'UnschedulablePendingReboot',
    );
  });

  it.each([
    ['Error', 'Instance failed health checks and is being rebooted', 'UnschedulablePendingReboot'],
    ['Warning', 'Instance reboot requested after a GPU fault', 'UnschedulablePendingReboot'],
    ['Info', 'Instance reboot started', 'UnschedulablePendingReboot'],
    ['Error', 'Instance failed deep health checks; replacement scheduled', 'UnschedulablePendingReplacement'],
    ['Info', 'Instance is being replaced', 'UnschedulablePendingReplacement'],
    ['Error', 'Instance hardware fault detected', 'Unschedulable'],
    ['Critical', 'Instance unreachable', 'Unschedulable'],
    ['Info', 'Instance passed deep health checks', 'Schedulable'],
    ['Info', 'Instance creation succeeded', 'Schedulable'],
    ['Warning', 'Instance patching is pending', undefined],
    ['Info', 'Instance group scaling in progress', undefined],
  ])('maps level %s with description %j to %s', (level, description, health) => {
    expect(healthFromClusterEvent(detail({ EventLevel: level, Description: description }))).toBe(health);
  });

  it.each([
    ['a cluster-level event', { ResourceType: 'Cluster', InstanceId: undefined }],
    ['an instance-group event', { ResourceType: 'InstanceGroup' }],
    ['an instance event without an instance id', { InstanceId: undefined }],
  ])('gives no node signal for %s', (_name, over) => {
    expect(
      healthFromClusterEvent(detail({ EventLevel: 'Error', Description: 'failed', ...over })),
    ).toBeUndefined();
  });
});
