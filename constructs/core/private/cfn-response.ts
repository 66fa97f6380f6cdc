import * as https from 'https';
import * as http from 'http';
import { URL } from 'url';

/**
 * A CloudFormation custom resource request, as CloudFormation sends it to a Lambda function.
 * Defined here rather than imported from aws-cdk-lib, whose declaration depends on `@types/aws-lambda` and types
 * properties as `any`.
 * @see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html
 */
export interface CustomResourceRequest {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly ResourceType: string;
  /** Sent with Update and Delete. */
  readonly PhysicalResourceId?: string;
  /** Validated by each handler: CloudFormation passes every scalar as a string. */
  readonly ResourceProperties: Readonly<Record<string, unknown>>;
  readonly OldResourceProperties?: Readonly<Record<string, unknown>>;
  readonly ServiceToken?: string;
}

/**
 * A custom resource request as a handler takes it: the fields of {@link CustomResourceRequest}, of which only
 * `RequestType` and `ResourceProperties` are required, so that a handler can also be called with just what it reads
 * (by tests, or by another handler). Only {@link respondTo} needs the rest.
 */
export type CustomResourceEvent = Pick<CustomResourceRequest, 'RequestType' | 'ResourceProperties'> & Partial<CustomResourceRequest>;

/**
 * What a handler returns for a successful request. `Data` is typed per handler: the attributes it offers to
 * `Fn::GetAtt` (public values only: CloudFormation shows them); `never` for a handler that offers none.
 */
export interface CustomResourceResult<Data extends Readonly<Record<string, string>> = Readonly<Record<string, string>>> {
  readonly PhysicalResourceId: string;
  readonly Data?: Data;
}

/**
 * Runs `handler` for a CloudFormation custom resource request and reports the outcome to the pre-signed S3
 * URL CloudFormation gave (the documented response protocol), so the function needs no route but the S3
 * gateway endpoint: no Provider framework function calling the Lambda API from the VPC.
 *
 * A failure is reported as FAILED with the error's message (which must never contain a secret); the
 * physical ID of a failed Create is the request ID, so CloudFormation's rollback Delete is a no-op.
 *
 * @see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html
 */
export async function respondTo(event: CustomResourceRequest, handler: (e: CustomResourceRequest) => Promise<CustomResourceResult>): Promise<void> {
  let body: Record<string, unknown>;
  try {
    const result = await handler(event);
    body = { Status: 'SUCCESS', PhysicalResourceId: result.PhysicalResourceId, Data: result.Data ?? {} };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    body = { Status: 'FAILED', Reason: message.slice(0, 3500), PhysicalResourceId: event.PhysicalResourceId ?? event.RequestId };
  }
  await put(event.ResponseURL, JSON.stringify({
    ...body,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  }));
}

/** PUTs the response; the pre-signed URL expects no Content-Type. Bounded: 3 tries. */
async function put(url: string, body: string): Promise<void> {
  let last: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await putOnce(url, body);
      return;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  throw new Error(`could not send the custom resource response: ${last instanceof Error ? last.message : String(last)}`);
}

function putOnce(url: string, body: string): Promise<void> {
  const u = new URL(url);
  const client = u.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = client.request(u, { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
