import { type RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { type Construct } from 'constructs';
import { MeshKey } from '../key';

/** Creates a {@link MeshKey}: the positional form the library's constructs call. */
export function newMeshKey(scope: Construct, id: string, description: string, removalPolicy: RemovalPolicy): kms.Key {
  return new MeshKey(scope, id, { description, removalPolicy });
}

/** Lets CloudWatch Logs of the key's account and region use `key` ({@link MeshKey.allowCloudWatchLogs}). */
export function allowCloudWatchLogs(key: kms.IKey): void {
  MeshKey.allowCloudWatchLogs(key);
}
