/**
 * Bundles the library's Lambda handlers into build/handlers/<name>/index.js for the npm package, so users of
 * the package synthesize without esbuild or Docker. Run by `npm run build`.
 */
import * as path from 'path';
import { bundleHandler, HANDLERS } from '../constructs/core/private/handler-code';

const root = path.resolve(__dirname, '..');
for (const [name, entry] of Object.entries(HANDLERS)) {
  bundleHandler(path.join(root, 'constructs', entry), path.join(root, 'build', 'handlers', name));
  console.log(`bundled ${name} -> build/handlers/${name}/index.js`);
}
