#!/usr/bin/env node
// The hivemind-worker command (package bin). Needs the compiled code: npm run build.
require('../dist/apps/cli/src/main.js');
