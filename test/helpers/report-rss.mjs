// Preloaded into a child process (NODE_OPTIONS=--import) by tests that bound its memory: at exit it
// writes the peak resident set size in KiB (all threads) to $HEXZ_TEST_RSS_FILE.
import { writeFileSync } from 'node:fs';

const file = process.env.HEXZ_TEST_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
