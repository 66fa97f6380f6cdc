/**
 * A local stand-in of CloudWatch metrics, for handler tests: `PutMetricData` over the protocol that
 * `@aws-sdk/client-cloudwatch` 3.1162 sends, AWS JSON 1.0 (POST /, `Content-Type: application/x-amz-json-1.0`,
 * `X-Amz-Target: GraniteServiceVersion20100801.PutMetricData`, timestamps as epoch seconds), with the SDK's gzip
 * request compression (used from 10 KiB) undone. Older SDKs speak the Query protocol
 * (`application/x-www-form-urlencoded`, `Action=PutMetricData`); the stand-in refuses that with a clear error
 * rather than guess.
 *
 * Requests are recorded with their SigV4 headers, so tests can assert the SDK signed them.
 *
 * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
 * @see https://smithy.io/2.0/aws/protocols/aws-json-1_0-protocol.html
 */
import { AwsJsonError, AwsJsonServer, type AwsJsonRequest } from './aws-json-server';

/** The JSON 1.0 target prefix of CloudWatch (its Smithy service shape name). */
export const CLOUDWATCH_TARGET_PREFIX = 'GraniteServiceVersion20100801.';

/** One datum, as received. */
export interface MetricDatum {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value?: number;
  readonly unit?: string;
  readonly timestamp?: Date;
}

/** One request, as received. */
export interface CloudWatchRequest {
  readonly target: string;
  readonly authorization: string;
  readonly amzDate: string | undefined;
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly body: Readonly<Record<string, unknown>>;
}

/** An error to answer PutMetricData with. */
export interface CloudWatchFault {
  /** The error's `__type`, e.g. `AccessDeniedException`. */
  readonly type: string;
  readonly message: string;
  /** @default 400 */
  readonly status?: number;
}

/** The stand-in server. `start()` returns the endpoint for `AWS_ENDPOINT_URL_CLOUDWATCH`. */
export class CloudWatchStandIn {
  public readonly requests: CloudWatchRequest[] = [];
  /** Every datum accepted, in order. */
  public readonly data: MetricDatum[] = [];
  public fault: CloudWatchFault | undefined;
  private readonly server = new AwsJsonServer({
    version: '1.0',
    requireContentType: true,
    // awsQueryCompatible services also name the Query error code in this header; the SDK reads either.
    errorHeaders: (type) => ({ 'x-amzn-query-error': `${type};Sender` }),
    handle: (r) => this.serve(r),
  });

  public start(): Promise<string> {
    return this.server.start();
  }

  public stop(): Promise<void> {
    return this.server.stop();
  }

  public reset(): void {
    this.requests.length = 0;
    this.data.length = 0;
    this.fault = undefined;
  }

  /** The data points of one metric, in order. */
  public datums(metricName: string): MetricDatum[] {
    return this.data.filter((d) => d.metricName === metricName);
  }

  private serve(request: AwsJsonRequest): object {
    const { target, body } = request;
    this.requests.push({
      target,
      authorization: request.authorization,
      amzDate: request.amzDate,
      contentType: request.contentType,
      contentEncoding: request.contentEncoding,
      body,
    });
    if (target !== `${CLOUDWATCH_TARGET_PREFIX}PutMetricData`) {
      throw new AwsJsonError('InvalidAction', `the stand-in does not implement ${target}`);
    }
    if (this.fault) {
      throw new AwsJsonError(this.fault.type, this.fault.message, this.fault.status ?? 400);
    }
    const namespace = body.Namespace;
    const metricData = body.MetricData;
    if (typeof namespace !== 'string' || namespace === '' || namespace.startsWith('AWS/')) {
      throw new AwsJsonError('InvalidParameterValue', `The value ${String(namespace)} for parameter Namespace is not valid.`);
    }
    if (!Array.isArray(metricData) || metricData.length === 0 || metricData.length > 1000) {
      throw new AwsJsonError('InvalidParameterValue', 'MetricData must have 1 to 1000 items.');
    }
    const accepted: MetricDatum[] = [];
    for (const raw of metricData as Array<Record<string, unknown>>) {
      if (typeof raw.MetricName !== 'string' || raw.MetricName === '') {
        throw new AwsJsonError('MissingParameter', 'The parameter MetricData.member.MetricName is required.');
      }
      const dimensions = Array.isArray(raw.Dimensions) ? (raw.Dimensions as Array<{ Name: string; Value: string }>) : [];
      accepted.push({
        namespace,
        metricName: raw.MetricName,
        dimensions: Object.fromEntries(dimensions.map((d) => [d.Name, d.Value])),
        ...(typeof raw.Value === 'number' ? { value: raw.Value } : {}),
        ...(typeof raw.Unit === 'string' ? { unit: raw.Unit } : {}),
        ...(typeof raw.Timestamp === 'number' ? { timestamp: new Date(raw.Timestamp * 1000) } : {}),
      });
    }
    this.data.push(...accepted);
    return {};
  }
}
