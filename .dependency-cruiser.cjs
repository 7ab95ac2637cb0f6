// Import rules of the source tree, checked by test/architecture.test.ts: the engine is the bottom layer and knows
// no stage, connector, dashboard or application; the dashboards stand on the engine alone; a stage knows no protocol;
// the trust code knows no transport or store; a bench uses no test code; no module or folder imports itself again.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'engine-is-the-bottom-layer',
      comment: 'engine/ holds the contracts the layers above implement; it imports none of them',
      severity: 'error',
      from: { path: '^engine/' },
      to: { path: '^(pipelines|connectors|dashboards|app)/' },
    },
    {
      name: 'stages-know-no-protocol',
      comment: 'a pipeline stage works on the contracts in engine/; the hub hands it the connector',
      severity: 'error',
      from: { path: '^pipelines/' },
      to: { path: '^connectors/' },
    },
    {
      name: 'trust-knows-no-transport-or-store',
      comment: 'signature and certificate checks are handed what they need as functions and small interfaces; the hub wires NATS, HTTP, the stores and the registry to them',
      severity: 'error',
      from: { path: '^engine/(trust|pki)/' },
      to: { path: '^engine/(nats/|store/|http\\.ts$|registry\\.ts$)' },
    },
    {
      name: 'dashboards-stand-on-the-engine',
      comment: 'the console reads the store and the contracts in engine/; it drives no stage, connector or hub assembly of its own',
      severity: 'error',
      from: { path: '^dashboards/' },
      to: { path: '^(pipelines|connectors|app|bench|test)/' },
    },
    {
      name: 'benches-use-no-test-code',
      comment: 'a bench drives the hub as the suite does, through app/hub-process.ts, not through the test harness',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-cycles',
      comment: 'a cycle means one concept lives in two homes: move the shared piece down',
      severity: 'error',
      from: { path: '^(engine|pipelines|connectors|dashboards|app)/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'two folders that import each other are one concept in two homes: move the shared piece down',
      severity: 'error',
      scope: 'folder',
      from: { path: '^(engine|pipelines|connectors|dashboards|app)/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    // The .ts extensions written in imports resolve as written.
    enhancedResolveOptions: {
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
      // Node's conditions: some packages export their entry points for ESM only.
      conditionNames: ['import', 'require', 'node', 'default'],
      exportsFields: ['exports'],
    },
  },
};
