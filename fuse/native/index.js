'use strict';
// The compiled addon (node-gyp puts it in build/Release); fuse/fuse3.ts wraps it as a fuse-native drop-in.
module.exports = require('./build/Release/hexz_fuse3.node');
