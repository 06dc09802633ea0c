// Drive the local cloud with Particle's own JavaScript client (npm particle-api-js).
// Usage: node particle-api-js-check.js URL  (env TOKEN, OTHER_TOKEN, PRODUCT, IDS=id,id,serial)
// Prints one line per check, "ok <name>" or "FAIL <name>: <why>", and exits 1 on any failure.
'use strict';
const Particle = require('particle-api-js');

const [baseUrl] = process.argv.slice(2);
const auth = process.env.TOKEN;
const other = process.env.OTHER_TOKEN;
const product = process.env.PRODUCT;
const ids = process.env.IDS.split(',');
const api = new Particle({ baseUrl });
let failed = 0;

async function check(name, fn) {
	try {
		await fn();
		console.log(`ok ${name}`);
	} catch (e) {
		failed += 1;
		const body = e.body ? JSON.stringify(e.body) : '';
		console.log(`FAIL ${name}: ${e.statusCode || ''} ${e.message} ${body}`);
	}
}

function expect(cond, why) {
	if (!cond) { throw new Error(why); }
}

(async () => {
	await check('addDeviceToProduct file', async () => {
		const file = Buffer.from(ids.join('\n') + '\nNOPE', 'utf8');
		const r = await api.addDeviceToProduct({ product, file, auth });
		expect(r.body.updated === ids.length, `updated ${r.body.updated}`);
		expect(r.body.invalidDeviceIds.includes('NOPE'), 'NOPE not invalid');
	});
	await check('addDeviceToProduct id (repeat → existing)', async () => {
		const r = await api.addDeviceToProduct({ product, deviceId: ids[0], auth });
		expect(r.body.existingDeviceIds[0] === ids[0], JSON.stringify(r.body));
	});
	await check('create group (post)', async () => {
		const r = await api.post({ uri: `/v1/products/${product}/groups`, auth,
			data: { name: 'line-a', description: 'from api-js', color: '#cae6f6' } });
		expect(r.statusCode === 201 && r.body.group.name === 'line-a', JSON.stringify(r.body));
	});
	await check('duplicate group → 400', async () => {
		try {
			await api.post({ uri: `/v1/products/${product}/groups`, auth, data: { name: 'line-a' } });
		} catch (e) {
			expect(e.statusCode === 400, `status ${e.statusCode}`);
			return;
		}
		throw new Error('no error');
	});
	await check('batch groups (put)', async () => {
		const r = await api.put({ uri: `/v1/products/${product}/devices`, auth,
			data: { action: 'groups', devices: ids.slice(0, 2), metadata: { add: ['line-a'] } } });
		expect(r.body.ok === true, JSON.stringify(r.body));
	});
	await check('renameDevice (product)', async () => {
		const r = await api.renameDevice({ deviceId: ids[0], name: 'unit-one', product, auth });
		expect(r.body.name === 'unit-one' && r.body.updated_at, JSON.stringify(r.body));
	});
	await check('updateDevice notes + development', async () => {
		const r = await api.updateDevice({ deviceId: ids[0], notes: 'n', development: true, product, auth });
		expect(r.body.notes === 'n' && r.body.development === true, JSON.stringify(r.body));
	});
	await check('listDevices groups + per_page', async () => {
		const r = await api.listDevices({ product, groups: ['line-a'], perPage: 1, auth });
		expect(r.body.devices.length === 1 && r.body.meta.total_pages === 2, JSON.stringify(r.body.meta));
	});
	await check('getDevice (product)', async () => {
		const r = await api.getDevice({ deviceId: ids[0], product, auth });
		expect(r.body.name === 'unit-one' && r.body.groups.includes('line-a'), JSON.stringify(r.body));
	});
	await check('claimDevice', async () => {
		const r = await api.claimDevice({ deviceId: ids[0], auth });
		expect(r.body.ok === true, JSON.stringify(r.body));
	});
	await check('claimDevice by another user → 403 belongs to someone else', async () => {
		try {
			await api.claimDevice({ deviceId: ids[0], auth: other });
		} catch (e) {
			expect(e.statusCode === 403, `status ${e.statusCode}`);
			expect(JSON.stringify(e.body).includes('belongs to someone else'), JSON.stringify(e.body));
			return;
		}
		throw new Error('no error');
	});
	await check('lookupSerialNumber', async () => {
		const serial = ids.find((i) => i.length === 15);
		const r = await api.lookupSerialNumber({ serialNumber: serial, auth });
		expect(r.body.ok === true && r.body.device_id.length === 24, JSON.stringify(r.body));
	});
	await check('listSIMs (product)', async () => {
		const r = await api.listSIMs({ product, auth });
		expect(r.body.sims.length === ids.length && r.body.sims[0].status === 'active', JSON.stringify(r.body));
	});
	await check('removeDevice (product) → 204 as {}', async () => {
		const r = await api.removeDevice({ deviceId: ids[1], product, auth });
		expect(r.statusCode === 204, `status ${r.statusCode}`);
	});
	await check('bad token → 401 invalid_token', async () => {
		try {
			await api.getDevice({ deviceId: ids[0], product, auth: 'nope' });
		} catch (e) {
			expect(e.statusCode === 401 && e.body.error === 'invalid_token', JSON.stringify(e.body));
			return;
		}
		throw new Error('no error');
	});
	console.log(`${failed ? 'FAILED' : 'all ok'}`);
	process.exit(failed ? 1 : 0);
})();
