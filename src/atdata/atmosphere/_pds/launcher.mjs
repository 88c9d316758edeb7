// atdata test PDS: one Node process serving an ATProto PDS and a PLC directory on loopback.
//
// Started by atdata.atmosphere._pdsrun (``atdata local up --pds`` and the pytest fixture).
// Everything is configured from the environment:
//   ATDATA_PDS_DATA   directory for databases, blobs, secrets, the PLC journal and ready.json
//   PDS_PORT          port of the PDS (required: DID documents name it)
//   PLC_PORT          port of the PLC directory (0 or unset: any free port)
//   other PDS_*       passed to @atproto/pds readEnv() unchanged
// When both servers listen, ready.json is written into the data directory with
// {"pds": url, "plc": url, "pid": n}; the Python side waits for that file.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const LOOPBACK = '127.0.0.1'
const requireCjs = createRequire(import.meta.url)
const say = (msg) => process.stdout.write(`${new Date().toISOString()} atdata-pds: ${msg}\n`)

const dataDir = resolve(process.env.ATDATA_PDS_DATA ?? 'pds-data')
mkdirSync(dataDir, { recursive: true })

function loadSecrets () {
  // Random per data directory, kept so a restart keeps accounts and signing keys usable.
  const file = join(dataDir, 'secrets.json')
  if (!existsSync(file)) {
    const fresh = {
      PDS_JWT_SECRET: randomBytes(24).toString('hex'),
      PDS_ADMIN_PASSWORD: randomBytes(12).toString('hex'),
      PDS_DPOP_SECRET: randomBytes(32).toString('hex'),
      PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: randomBytes(32).toString('hex')
    }
    writeFileSync(file, JSON.stringify(fresh), { mode: 0o600 })
  }
  return JSON.parse(readFileSync(file, 'utf8'))
}

async function listenLoopback (app, port) {
  const server = app.listen(port, LOOPBACK)
  await once(server, 'listening')
  return server
}

async function startPlc () {
  // In-memory PLC directory. Accepted operations are journaled so DIDs survive a restart.
  const { Database, PlcServer } = requireCjs('@did-plc/server')
  const db = Database.mock()
  const journal = join(dataDir, 'plc-ops.jsonl')
  const accept = db.validateAndAddOp.bind(db)
  if (existsSync(journal)) {
    const lines = readFileSync(journal, 'utf8').split('\n').filter((l) => l.trim() !== '')
    for (const line of lines) {
      const entry = JSON.parse(line)
      await accept(entry.did, entry.op)
    }
    say(`PLC journal: ${lines.length} operation(s) restored`)
  }
  db.validateAndAddOp = async (did, op) => {
    await accept(did, op)
    appendFileSync(journal, JSON.stringify({ did, op }) + '\n')
  }
  const server = await listenLoopback(PlcServer.create({ db }).app, Number(process.env.PLC_PORT ?? 0))
  return server
}

async function startPds (plcUrl) {
  const defaults = {
    PDS_HOSTNAME: 'localhost',
    PDS_DEV_MODE: 'true', // http URLs for OAuth metadata; also lets the PDS reach the loopback PLC
    PDS_INVITE_REQUIRED: 'false',
    PDS_BLOB_UPLOAD_LIMIT: String(100 * 1024 * 1024),
    PDS_BLOBSTORE_DISK_LOCATION: join(dataDir, 'blobs'),
    ...loadSecrets()
  }
  for (const [key, value] of Object.entries(defaults)) {
    if (process.env[key] === undefined || process.env[key] === '') process.env[key] = value
  }
  process.env.PDS_DATA_DIRECTORY = dataDir
  // The PDS identity resolver refuses IP-literal hosts, so the PLC is named by host name.
  process.env.PDS_DID_PLC_URL = plcUrl
  // The port must be fixed up front: the public URL in every DID document is built from it.
  const port = Number(process.env.PDS_PORT)
  if (!Number.isInteger(port) || port <= 0) throw new Error('PDS_PORT must be set to a port number')
  const pdsModule = await import('@atproto/pds')
  const env = pdsModule.readEnv()
  const pds = await pdsModule.PDS.create(pdsModule.envToCfg(env), pdsModule.envToSecrets(env))
  await pds.ctx.sequencer.start()
  const server = await listenLoopback(pds.app, port)
  server.keepAliveTimeout = 60_000
  pds.server = server
  return { pds, server }
}

const closeServer = (server) => new Promise((done) => {
  server.close(() => done())
  server.closeAllConnections?.()
})

const plcServer = await startPlc()
const plcUrl = `http://localhost:${plcServer.address().port}`
say(`PLC directory at ${plcUrl}`)
const { pds, server: pdsServer } = await startPds(plcUrl)
const pdsUrl = `http://${LOOPBACK}:${pdsServer.address().port}`
say(`PDS at ${pdsUrl} (public URL ${pds.ctx.cfg.service.publicUrl})`)

const ready = join(dataDir, 'ready.json')
writeFileSync(ready + '.tmp', JSON.stringify({ pds: pdsUrl, plc: plcUrl, pid: process.pid }))
renameSync(ready + '.tmp', ready)

let closing = false
async function stop (signal) {
  if (closing) return
  closing = true
  say(`${signal}: shutting down`)
  try {
    await closeServer(pdsServer)
    await pds.ctx.destroy()
    await closeServer(plcServer)
  } catch (err) {
    say(`shutdown error: ${err}`)
  }
  process.exit(0)
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => stop(signal))
