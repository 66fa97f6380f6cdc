/**
 * The server side of the AWS JSON protocols (1.0 and 1.1) that the local stand-ins of AWS services share: plain
 * HTTP on 127.0.0.1, `POST /` with the operation in `X-Amz-Target` and a JSON body (gzipped when the SDK compressed
 * it: `Content-Encoding: gzip`), answered with a JSON body or a JSON error whose `__type` names the error.
 *
 * It records no request itself: each stand-in records what it needs of {@link AwsJsonRequest} (with the SigV4
 * headers, so tests can assert the SDK signed it) in its own shape.
 *
 * @see https://smithy.io/2.0/aws/protocols/aws-json-1_0-protocol.html
 * @see https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html
 */
import * as crypto from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as zlib from 'zlib';

/** One request, as received. */
export interface AwsJsonRequest {
  /** `X-Amz-Target`, e.g. `secretsmanager.GetSecretValue` (empty when absent). */
  readonly target: string;
  /** The SigV4 `Authorization` header (empty when absent). */
  readonly authorization: string;
  readonly amzDate: string | undefined;
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  /** The body, un-gzipped and parsed (`{}` when empty). */
  readonly body: Record<string, unknown>;
}

/** An error to answer with: thrown by a handler, answered as `{"__type": type, "message": message}`. */
export class AwsJsonError extends Error {
  public constructor(
    public readonly type: string,
    message: string,
    public readonly status = 400,
  ) {
    super(message);
  }
}

/** Options of an {@link AwsJsonServer}. */
export interface AwsJsonServerOptions {
  /** The protocol version, which is also the `application/x-amz-json-<version>` content type of the responses. */
  readonly version: '1.0' | '1.1';
  /**
   * Whether a request of another content type is refused (as `InvalidAction`, without parsing or handling it).
   * @default false
   */
  readonly requireContentType?: boolean;
  /** Headers to add to every error response, from the error's `__type`. */
  readonly errorHeaders?: (type: string) => Readonly<Record<string, string>>;
  /**
   * Serves one request: returns the response body (HTTP 200), or throws an {@link AwsJsonError} to answer with.
   * Anything else thrown is answered as `InternalServerError` (HTTP 500).
   */
  readonly handle: (request: AwsJsonRequest) => object;
}

/** An AWS JSON protocol server on 127.0.0.1: `start()` returns its endpoint, for `AWS_ENDPOINT_URL_<SERVICE>`. */
export class AwsJsonServer {
  private readonly server = http.createServer((req, res) => this.serve(req, res));
  private readonly contentType: string;

  public constructor(private readonly options: AwsJsonServerOptions) {
    this.contentType = `application/x-amz-json-${options.version}`;
  }

  /** Listens on a free port of 127.0.0.1 and returns the endpoint URL. */
  public async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  public async stop(): Promise<void> {
    // The SDK keeps connections alive: close them, or the server never finishes closing.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, payload: object): void => {
        res.writeHead(status, { 'content-type': this.contentType, 'x-amzn-requestid': crypto.randomUUID() });
        res.end(JSON.stringify(payload));
      };
      const error = (e: AwsJsonError): void => {
        for (const [name, value] of Object.entries(this.options.errorHeaders?.(e.type) ?? {})) {
          res.setHeader(name, value);
        }
        reply(e.status, { __type: e.type, message: e.message });
      };
      const contentType = req.headers['content-type'];
      const contentEncoding = req.headers['content-encoding'];
      if (this.options.requireContentType && contentType !== this.contentType) {
        return error(new AwsJsonError('InvalidAction', `the stand-in speaks AWS JSON ${this.options.version} only, got Content-Type ${String(contentType)}`));
      }
      let body: Record<string, unknown>;
      try {
        const raw = Buffer.concat(chunks);
        const text = (contentEncoding === 'gzip' ? zlib.gunzipSync(raw) : raw).toString('utf8');
        body = JSON.parse(text || '{}') as Record<string, unknown>;
      } catch {
        return error(new AwsJsonError('SerializationException', 'the body is not (gzipped) JSON'));
      }
      const request: AwsJsonRequest = {
        target: String(req.headers['x-amz-target'] ?? ''),
        authorization: String(req.headers.authorization ?? ''),
        amzDate: req.headers['x-amz-date'] as string | undefined,
        contentType,
        contentEncoding,
        body,
      };
      try {
        reply(200, this.options.handle(request));
      } catch (e) {
        error(e instanceof AwsJsonError ? e : new AwsJsonError('InternalServerError', e instanceof Error ? e.message : String(e), 500));
      }
    });
  }
}
