import { Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type App } from 'aws-cdk-lib';
import { GlooLambdaFunction, ServiceAccountIssuer } from '../../../constructs/eks';
import { Mesh } from '../../../constructs/mesh';
import { newTestApp } from '../../harness';

/** What the EKS construct tests share: a fixed-region stack, a mesh with three function versions and their functions. */
export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';
export const ISSUER_HOST = `oidc.eks.${REGION}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF`;
export const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/${ISSUER_HOST}`;

export interface Fixture {
  readonly app: App;
  readonly stack: Stack;
  readonly mesh: Mesh;
  readonly issuer: ServiceAccountIssuer;
  readonly functions: GlooLambdaFunction[];
}

export function fixture(): Fixture {
  const app = newTestApp();
  const stack = new Stack(app, 'Eks', { env: { account: ACCOUNT, region: REGION } });
  const mesh = new Mesh(stack, 'Model', { meshName: 'ml' });
  mesh.addService('feature-store', { port: 8080 });
  mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
  mesh.addFunction('model-b', { versions: ['v1'] });
  const functions = ['model-a-v1', 'model-a-v2', 'model-b-v1'].map((identity) =>
    GlooLambdaFunction.fromFunction(identity, lambda.Function.fromFunctionName(stack, `Fn-${identity}`, `ml-${identity}`)));
  return { app, stack, mesh, issuer: ServiceAccountIssuer.fromProviderArn(PROVIDER_ARN, `https://${ISSUER_HOST}`), functions };
}

export { meshError } from '../../util';

/** The statements of every IAM policy in a template, flattened. */
export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: unknown;
}

export function actions(s: Statement): string[] {
  return Array.isArray(s.Action) ? s.Action : [s.Action];
}
