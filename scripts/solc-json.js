#!/usr/bin/env node
// Compiles Solidity with the pinned solc-js: reads standard JSON input on stdin, writes the
// standard JSON output on stdout. Imports not given in the input (e.g. "@openzeppelin/...") are
// read from <tools>/node_modules, where <tools> is $COOPCHAIN_TOOLS_DIR or ../tools.
// `solc-json.js --version` prints the compiler's long version.
"use strict";

const fs = require("fs");
const path = require("path");

const toolsDir = path.resolve(process.env.COOPCHAIN_TOOLS_DIR || path.join(__dirname, "..", "tools"));
const nodeModules = path.join(toolsDir, "node_modules");
const solc = require(path.join(nodeModules, "solc"));

if (process.argv.includes("--version")) {
  process.stdout.write(solc.version() + "\n");
  process.exit(0);
}

function findImports(importPath) {
  const resolved = path.resolve(nodeModules, importPath);
  if (!resolved.startsWith(nodeModules + path.sep)) {
    return { error: `import outside ${nodeModules}: ${importPath}` };
  }
  try {
    return { contents: fs.readFileSync(resolved, "utf8") };
  } catch (err) {
    return { error: `cannot read ${importPath} from ${nodeModules}: ${err.code || err.message}` };
  }
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
