/**
 * What the registrar and rotation handler tests share: one mesh, its parameter path, key and Consul secrets.
 */
export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';
export const MESH = 'prod';
export const NODE = `lambda-mesh-functions-${MESH}`;
export const PREFIX = `/lambda-mesh/${MESH}`;
export const STACK_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/mesh/00000000-0000-0000-0000-000000000000`;
export const KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b6c8f4e-0000-4000-8000-000000000001`;
export const CA_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/ca-certificate-AbCdEf`;
export const TOKEN_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/token-identity-registrar-AbCdEf`;
export const CONSUL_SECRETS = { ca: CA_SECRET, token: TOKEN_SECRET };

/** Function versions as the registrar receives them. */
export const A = { name: 'model-a-v1', functionName: 'model-a', version: '1' };
export const B = { name: 'model-b-v3', functionName: 'model-b', version: '3' };

/** The bundle's parameter name: `<prefix>/<partition>/<namespace>/<identity>`. */
export const parameter = (identity: string, namespace = 'default', partition = 'default'): string => `${PREFIX}/${partition}/${namespace}/${identity}`;

/** The registrar custom resource's properties, as IdentityRegistrar sets them for this mesh. */
export function registrarProperties(identities: ReadonlyArray<typeof A>): Record<string, unknown> {
  return {
    Identities: JSON.stringify(identities),
    ParameterPrefix: PREFIX,
    Partition: 'default',
    Namespace: 'default',
    Datacenter: 'dc1',
    KmsKeyId: KMS_KEY,
    NodeName: NODE,
  };
}
