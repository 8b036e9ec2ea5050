#!/usr/bin/env node
// The `tollgate` command. CommonJS on purpose: it must run before anything touches libuv's thread
// pool, and loading an ES module already does (the loader reads files through it), after which
// the pool's size is fixed.
import os = require('node:os');
import threadPool = require('./thread-pool.cjs');

threadPool.sizeThreadPool(process.env, os.availableParallelism());
void import('./main.js');
