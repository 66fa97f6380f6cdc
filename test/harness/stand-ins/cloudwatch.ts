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
import * as crypto from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as zlib from 'zlib';

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
  private readonly server = http.createServer((req, res) => this.serve(req, res));

  public async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
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

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, payload: object): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': crypto.randomUUID() });
        res.end(JSON.stringify(payload));
      };
      const error = (status: number, type: string, message: string): void => {
        // awsQueryCompatible services also name the Query error code in this header; the SDK reads either.
        res.setHeader('x-amzn-query-error', `${type};Sender`);
        reply(status, { __type: type, message });
      };
      const contentType = req.headers['content-type'];
      const contentEncoding = req.headers['content-encoding'];
      if (contentType !== 'application/x-amz-json-1.0') {
        return error(400, 'InvalidAction', `the stand-in speaks AWS JSON 1.0 only, got Content-Type ${String(contentType)}`);
      }
      let body: Record<string, unknown>;
      try {
        const raw = Buffer.concat(chunks);
        const text = (contentEncoding === 'gzip' ? zlib.gunzipSync(raw) : raw).toString('utf8');
        body = JSON.parse(text || '{}') as Record<string, unknown>;
      } catch {
        return error(400, 'SerializationException', 'the body is not (gzipped) JSON');
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      this.requests.push({
        target,
        authorization: String(req.headers.authorization ?? ''),
        amzDate: req.headers['x-amz-date'] as string | undefined,
        contentType,
        contentEncoding,
        body,
      });
      if (target !== `${CLOUDWATCH_TARGET_PREFIX}PutMetricData`) {
        return error(400, 'InvalidAction', `the stand-in does not implement ${target}`);
      }
      if (this.fault) {
        return error(this.fault.status ?? 400, this.fault.type, this.fault.message);
      }
      const namespace = body.Namespace;
      const metricData = body.MetricData;
      if (typeof namespace !== 'string' || namespace === '' || namespace.startsWith('AWS/')) {
        return error(400, 'InvalidParameterValue', `The value ${String(namespace)} for parameter Namespace is not valid.`);
      }
      if (!Array.isArray(metricData) || metricData.length === 0 || metricData.length > 1000) {
        return error(400, 'InvalidParameterValue', 'MetricData must have 1 to 1000 items.');
      }
      const accepted: MetricDatum[] = [];
      for (const raw of metricData as Array<Record<string, unknown>>) {
        if (typeof raw.MetricName !== 'string' || raw.MetricName === '') {
          return error(400, 'MissingParameter', 'The parameter MetricData.member.MetricName is required.');
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
      reply(200, {});
    });
  }
}
