// Times Particle's own module parser (binary-version-reader, from npm) on the same files
// trayline parses; benchmarks/firmware.py runs it. Usage: node firmware_reference.js N file...
// Prints JSON: {"version": "...", "files": {"path": {"ms": median ms per parse, "error": ...}}}
const path = require('path');
const fs = require('fs');
const root = path.join(__dirname, '.node', 'node_modules');
const { HalModuleParser } = require(path.join(root, 'binary-version-reader'));
const version = require(path.join(root, 'binary-version-reader', 'package.json')).version;

async function main() {
	const repeats = Number(process.argv[2]);
	const files = process.argv.slice(3);
	const parser = new HalModuleParser();
	const out = {};
	for (const file of files) {
		const buffer = fs.readFileSync(file);
		const times = [];
		let error = null;
		for (let i = 0; i < repeats; i++) {
			const t0 = process.hrtime.bigint();
			try {
				if (buffer.length === 0) { throw new Error('empty'); }
				await parser.parseBuffer({ fileBuffer: buffer });
			} catch (e) {
				error = String(e.message || e);
			}
			times.push(Number(process.hrtime.bigint() - t0) / 1e6);
		}
		times.sort((a, b) => a - b);
		out[file] = { ms: times[Math.floor(times.length / 2)], error };
	}
	process.stdout.write(JSON.stringify({ version, files: out }));
}
main();
