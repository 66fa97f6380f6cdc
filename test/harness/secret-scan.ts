/**
 * Finds values that look like secret material in synthesized output (templates, user data, assets), so a test
 * can prove no secret ever reaches them: PEM blocks, UUIDs (the shape of Consul ACL token IDs), 32-byte base64
 * strings (the shape of a gossip key), AWS access key IDs and literal SecretString values.
 */
export function findSecretMaterial(text: string): string[] {
  const patterns = [
    /-----BEGIN [A-Z ]*-----/g,
    /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
    /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])/g,
    /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
    /"SecretString"\s*:\s*"[^"]+"/g,
  ];
  return patterns.flatMap((p) => text.match(p) ?? []);
}
