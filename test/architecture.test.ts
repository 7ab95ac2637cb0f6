// The import rules of .dependency-cruiser.cjs hold over the source tree: dependency-cruiser reads every import of
// engine/, pipelines/, connectors/, dashboards/, app/ and bench/ (type-only ones too) and each broken rule is printed.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const folders = ['engine', 'pipelines', 'connectors', 'dashboards', 'app', 'bench'].filter((folder) => existsSync(join(root, folder)));

async function cruiseSources(): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(join(root, '.dependency-cruiser.cjs'));
  const tsConfig = extractTSConfig(join(root, 'tsconfig.json'));
  const reported = await cruise(folders, { ...options, baseDir: root, validate: true }, undefined, { tsConfig });
  return reported.output as ICruiseResult;
}

const result = await cruiseSources();

test('every relative import resolves, so no rule passes for want of a dependency', () => {
  const unresolved = result.modules.flatMap((module) => module.dependencies
    .filter((dependency) => dependency.couldNotResolve && dependency.module.startsWith('.'))
    .map((dependency) => `${module.source} → ${dependency.module}`));
  assert.equal(unresolved, []);
  assert.ok(result.modules.some((module) => module.source === 'pipelines/deliver.ts' && module.dependencies.some((dependency) => dependency.resolved === 'engine/outbound.ts')), 'imports written with .ts extensions are followed');
});

test('dashboards/ imports only itself and engine/, and engine/ nothing of dashboards/', () => {
  const local = (resolved: string) => /^(engine|pipelines|connectors|dashboards|app|bench|test)\//.test(resolved);
  const outside = result.modules.filter((module) => module.source.startsWith('dashboards/')).flatMap((module) => module.dependencies
    .filter((dependency) => local(dependency.resolved) && !/^(dashboards|engine)\//.test(dependency.resolved))
    .map((dependency) => `${module.source} → ${dependency.resolved}`));
  assert.equal(outside, []);
  const upward = result.modules.filter((module) => module.source.startsWith('engine/')).flatMap((module) => module.dependencies
    .filter((dependency) => dependency.resolved.startsWith('dashboards/'))
    .map((dependency) => `${module.source} → ${dependency.resolved}`));
  assert.equal(upward, []);
  assert.ok(result.modules.some((module) => module.source === 'dashboards/search.ts'), 'dashboards/ is cruised');
});

test('no import breaks a rule of .dependency-cruiser.cjs', () => {
  const violations = result.summary.violations.map((violation) => {
    const path = violation.cycle?.length ? ` (cycle: ${[violation.from, ...violation.cycle.map((step) => step.name)].join(' → ')})` : '';
    return `${violation.rule.name}: ${violation.from} → ${violation.to}${path}`;
  });
  assert.equal(violations, [], `\n${violations.join('\n')}\n`);
});

test.run();
