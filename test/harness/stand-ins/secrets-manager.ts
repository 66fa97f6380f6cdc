/**
 * A LOCAL STAND-IN of AWS Secrets Manager, for tests: the AWS JSON 1.1 protocol (POST /, X-Amz-Target, JSON bodies,
 * `__type` errors with HTTP 400) for GetSecretValue and PutSecretValue, with the documented semantics: an empty
 * secret has no AWSCURRENT version, PutSecretValue adds a version and moves AWSCURRENT to it, ClientRequestToken is
 * idempotent. Point the SDK at it with `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
 *
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
 */
import * as crypto from 'crypto';
import { AwsJsonError, AwsJsonServer, type AwsJsonRequest } from './aws-json-server';

/** One request as the stand-in received it. */
export interface RecordedRequest {
  readonly target: string;
  readonly authorization: string;
  readonly amzDate: string | undefined;
  readonly contentType: string | undefined;
  readonly body: { readonly SecretId?: string; readonly SecretString?: string; readonly ClientRequestToken?: string };
}

/** A fault to answer instead of the operation: an error `type` for one operation on one secret. */
export interface Fault {
  readonly operation: 'GetSecretValue' | 'PutSecretValue';
  readonly secretArn: string;
  readonly type: string;
  readonly message: string;
}

/** A local stand-in of Secrets Manager over plain HTTP on 127.0.0.1. */
export class SecretsManagerStandIn {
  public readonly requests: RecordedRequest[] = [];
  /** Every SecretString ever stored, to check that none of them leaks into logs or errors. */
  public readonly everStored: string[] = [];
  public faults: Fault[] = [];
  private secrets = new Map<string, { versions: Map<string, string>; current?: string }>();
  private readonly server = new AwsJsonServer({ version: '1.1', handle: (r) => this.serve(r) });

  /** Starts the server; returns the endpoint for `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  public start(): Promise<string> {
    return this.server.start();
  }

  public stop(): Promise<void> {
    return this.server.stop();
  }

  /** Forgets everything and creates `arns` as empty secrets, as the stack does before the custom resource runs. */
  public reset(arns: readonly string[] = []): void {
    this.secrets = new Map(arns.map((a) => [a, { versions: new Map<string, string>() }]));
    this.requests.length = 0;
    this.everStored.length = 0;
    this.faults = [];
  }

  /** Creates `secretArn` if needed and sets its value (a secret the stack filled earlier). */
  public setSecret(secretArn: string, value: string): void {
    if (!this.secrets.has(secretArn)) {
      this.secrets.set(secretArn, { versions: new Map<string, string>() });
    }
    this.setValue(secretArn, value);
  }

  public deleteSecret(secretArn: string): void {
    this.secrets.delete(secretArn);
  }

  /** Sets a value directly (what an operator or an earlier deployment left), bypassing the API. */
  public setValue(secretArn: string, value: string): void {
    const secret = this.secrets.get(secretArn)!;
    const versionId = crypto.randomUUID();
    secret.versions.set(versionId, value);
    secret.current = versionId;
    this.everStored.push(value);
  }

  /** Removes the AWSCURRENT value, as if the secret had been created empty. */
  public clearValue(secretArn: string): void {
    this.secrets.set(secretArn, { versions: new Map<string, string>() });
  }

  public value(secretArn: string): string | undefined {
    const secret = this.secrets.get(secretArn);
    return secret?.current === undefined ? undefined : secret.versions.get(secret.current);
  }

  public json(secretArn: string): Record<string, string> {
    const v = this.value(secretArn);
    if (v === undefined) {
      throw new Error(`${secretArn} has no value`);
    }
    return JSON.parse(v) as Record<string, string>;
  }

  public snapshot(): Record<string, string | undefined> {
    return Object.fromEntries([...this.secrets.keys()].map((k) => [k, this.value(k)]));
  }

  /** The SecretIds of the PutSecretValue calls received so far. */
  public puts(): string[] {
    return this.requests.filter((r) => r.target === 'secretsmanager.PutSecretValue').map((r) => r.body.SecretId!);
  }

  private serve(request: AwsJsonRequest): object {
    const { target } = request;
    const body = request.body as RecordedRequest['body'];
    this.requests.push({ target, authorization: request.authorization, amzDate: request.amzDate, contentType: request.contentType, body });

    const operation = target.replace(/^secretsmanager\./, '');
    const fault = this.faults.find((f) => f.operation === operation && f.secretArn === body.SecretId);
    if (fault) {
      throw new AwsJsonError(fault.type, fault.message);
    }
    const secretArn = body.SecretId ?? '';
    const secret = this.secrets.get(secretArn);
    const name = secretArn.split(':secret:')[1] ?? secretArn;
    switch (target) {
      case 'secretsmanager.GetSecretValue': {
        if (!secret) {
          throw new AwsJsonError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
        }
        if (secret.current === undefined) {
          throw new AwsJsonError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT");
        }
        return {
          ARN: secretArn,
          Name: name,
          VersionId: secret.current,
          SecretString: secret.versions.get(secret.current),
          VersionStages: ['AWSCURRENT'],
          CreatedDate: Date.now() / 1000,
        };
      }
      case 'secretsmanager.PutSecretValue': {
        if (!secret) {
          throw new AwsJsonError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
        }
        if (typeof body.SecretString !== 'string') {
          throw new AwsJsonError('InvalidParameterException', 'You must provide either SecretString or SecretBinary.');
        }
        const versionId = body.ClientRequestToken ?? crypto.randomUUID();
        const existing = secret.versions.get(versionId);
        if (existing !== undefined && existing !== body.SecretString) {
          throw new AwsJsonError('ResourceExistsException', 'You can’t modify an existing version, you can only create a new version.');
        }
        secret.versions.set(versionId, body.SecretString);
        secret.current = versionId;
        this.everStored.push(body.SecretString);
        return { ARN: secretArn, Name: name, VersionId: versionId, VersionStages: ['AWSCURRENT'] };
      }
      default:
        throw new AwsJsonError('UnknownOperationException', `the stand-in does not implement ${target}`);
    }
  }
}
