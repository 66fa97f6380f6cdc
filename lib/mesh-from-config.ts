import { type Construct } from 'constructs';
import { Mesh, type MeshService, type ServicePlacement, ServiceProtocol } from '../constructs/mesh';
import { type EnvironmentConfig, withConfigField } from './config';

/**
 * Builds the {@link Mesh} that `config` describes. Every call into the model runs under the config field it
 * comes from, so a bad value fails with the file and field path (`rules[2].to`), not only a construct path.
 */
export function meshFromConfig(scope: Construct, id: string, config: EnvironmentConfig, file: string): Mesh {
  const at = <T>(field: string, fn: () => T): T => withConfigField(file, field, fn);
  // The model names a field as the call plus a path inside its arguments (`addService("x").localPort`,
  // `fs.allowFrom(model-a).http.methods[0]`): keep that path under the config entry it came from.
  const atEntry = <T>(entry: string, fn: () => T): T =>
    withConfigField(file, (e) => `${entry}${/^[^(]*\([^)]*\)(?<rest>.*)$/.exec(e.field)?.groups?.rest ?? ''}`, fn);

  const m = config.mesh ?? {};
  const mesh = at('mesh', () => new Mesh(scope, id, {
    meshName: config.name,
    ...(m.datacenter !== undefined ? { datacenter: m.datacenter } : {}),
    ...(m.trustDomain !== undefined ? { trustDomain: m.trustDomain } : {}),
    ...(m.partition !== undefined ? { partition: m.partition } : {}),
    ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
  }));

  config.services.forEach((s, i) => atEntry(`services[${i}]`, () => mesh.addService(s.name, {
    port: s.port,
    // The config's protocol names are the enum's values (the schema enumerates exactly those).
    protocol: (s.protocol ?? ServiceProtocol.TCP) as ServiceProtocol,
    ...(s.localPort !== undefined ? { localPort: s.localPort } : {}),
    // The config's placement names are the enum's values too.
    placement: s.placement as ServicePlacement,
    ...(s.description !== undefined ? { description: s.description } : {}),
  })));

  config.functions.forEach((f, i) => {
    const fn = at(`functions[${i}].name`, () => mesh.addFunction(f.name, f.description !== undefined ? { description: f.description } : {}));
    f.versions.forEach((v, j) => at(`functions[${i}].versions[${j}]`, () => fn.addVersion(v)));
  });

  config.rules.forEach((r, i) => {
    const source = at(`rules[${i}].from`, () => mesh.source(r.from));
    const destination: MeshService = at(`rules[${i}].to`, () => mesh.service(r.to));
    const options = {
      ...(r.http !== undefined ? { http: r.http } : {}),
      ...(r.description !== undefined ? { description: r.description } : {}),
    };
    atEntry(`rules[${i}]`, () => (r.action === 'deny' ? destination.denyFrom(source, options) : destination.allowFrom(source, options)));
  });

  // Everything is declared: resolve once so conflicts surface here, with the file name, not at synth.
  at('rules', () => mesh.graph());
  return mesh;
}
