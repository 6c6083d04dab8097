// node_work.js - see node.sh. Deterministic: no clocks, no randomness.
'use strict';
const crypto = require('crypto');
const zlib = require('zlib');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

function build(n, salt) {
	const m = new Map();
	for (let i = 0; i < n; i++) {
		m.set('k' + i, { a: i, s: salt.repeat(i % 200), b: Buffer.alloc(i % 300, (i * 7) % 256) });
		if (i % 3 === 0)
			m.delete('k' + (i >> 1));
	}
	return m;
}

function digest(m) {
	const h = crypto.createHash('sha256');
	for (const [k, v] of m) {
		h.update(k);
		h.update(v.s);
		h.update(v.b);
	}
	return h.digest('hex');
}

if (isMainThread) {
	const w = new Worker(__filename, { workerData: 100000 });
	w.on('message', (d) => console.log('worker', d));
	const m = build(300000, 'x');
	console.log('map', m.size, digest(m));
	const big = Buffer.concat([...m.values()].slice(0, 20000).map((v) => Buffer.concat([Buffer.from(v.s), v.b])));
	const z = zlib.deflateSync(big, { level: 6 });
	const back = zlib.inflateSync(z);
	console.log('zlib', big.length, back.equals(big), crypto.createHash('md5').update(back).digest('hex'));
	const j = JSON.parse(JSON.stringify([...m.entries()].slice(0, 50000).map(([k, v]) => [k, v.a, v.s.length])));
	console.log('json', j.length, j[j.length - 1].join(','));
} else {
	const m = build(workerData, 'y');
	parentPort.postMessage(m.size + ' ' + digest(m));
}
