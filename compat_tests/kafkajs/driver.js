'use strict'
// Drives kafkajs against a kafkacompat broker for the Python compat tests.
//
// Usage: node driver.js <command> < request.json
// The request is one JSON object on stdin (always `brokers`, a list of
// host:port, plus what the command needs); the result is one JSON object on
// stdout. Binary keys, values and header values travel as base64 so the
// Python side can compare exact bytes. kafkajs's own log goes to stderr.

const fs = require('fs')
const { Kafka, CompressionTypes, ConfigResourceTypes, Partitioners, logLevel } = require('kafkajs')

const COMPRESSION = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }

function b64 (buffer) {
  return buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString('base64')
}

function unb64 (text) {
  return text === null || text === undefined ? null : Buffer.from(text, 'base64')
}

function stderrLogger () {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }
}

// `ssl` ({ca, cert, key}: PEM file paths) and `sasl` ({mechanism, username, password}, or
// {mechanism: 'oauthbearer', token}) secure the connection when the request has them.
function security (request) {
  const options = {}
  if (request.ssl) {
    const read = path => path ? fs.readFileSync(path, 'utf8') : undefined
    options.ssl = { ca: [read(request.ssl.ca)], cert: read(request.ssl.cert), key: read(request.ssl.key) }
  }
  if (request.sasl) {
    const { mechanism, token, ...rest } = request.sasl
    options.sasl = mechanism === 'oauthbearer'
      ? { mechanism, oauthBearerProvider: async () => ({ value: token }) }
      : { mechanism, ...rest }
  }
  return options
}

function connect (request) {
  return new Kafka({
    clientId: request.clientId || 'kafkacompat-kafkajs',
    brokers: request.brokers,
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    retry: { retries: request.retries === undefined ? 8 : request.retries, initialRetryTime: 100 },
    ...security(request)
  })
}

// kafkajs groups repeated header names into arrays; [name, value] pairs keep
// the wire order for the headers our tests send (each name's values adjacent).
function headersToObject (pairs) {
  const headers = {}
  for (const [name, value] of pairs) {
    const bytes = unb64(value)
    if (!(name in headers)) headers[name] = bytes
    else if (Array.isArray(headers[name])) headers[name].push(bytes)
    else headers[name] = [headers[name], bytes]
  }
  return headers
}

function headersToPairs (headers) {
  const pairs = []
  for (const [name, value] of Object.entries(headers || {})) {
    for (const item of Array.isArray(value) ? value : [value]) pairs.push([name, b64(item)])
  }
  return pairs
}

function toMessage (record) {
  return {
    key: unb64(record.key),
    value: unb64(record.value),
    headers: headersToObject(record.headers || []),
    timestamp: String(record.timestamp)
  }
}

async function withAdmin (kafka, body) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await body(admin)
  } finally {
    await admin.disconnect()
  }
}

// Creates the topic, then reports what kafkajs learns about it and the cluster.
async function admin (request) {
  return withAdmin(connect(request), async admin => {
    const created = await admin.createTopics({
      topics: [{ topic: request.topic, numPartitions: request.partitions }],
      waitForLeaders: true
    })
    const cluster = await admin.describeCluster()
    const topics = await admin.listTopics()
    const { topics: described } = await admin.fetchTopicMetadata({ topics: [request.topic] })
    const createdAgain = await admin.createTopics({ topics: [{ topic: request.topic, numPartitions: 1 }] })
    return { created, createdAgain, cluster, topics, described }
  })
}

// Sends every record in one call; reports where each one landed. kafkajs
// returns one base offset per partition, so each record's offset is that
// plus its position among the call's records for the same partition, which
// the same partitioner kafkajs uses computes here.
async function produce (request) {
  const kafka = connect(request)
  const partitionMetadata = await withAdmin(kafka, async admin => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [request.topic] })
    return topics[0].partitions
  })
  const partitioner = Partitioners.DefaultPartitioner()
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: Boolean(request.idempotent),
    maxInFlightRequests: request.idempotent ? 1 : undefined
  })
  await producer.connect()
  try {
    const messages = request.records.map(toMessage)
    const results = await producer.send({
      topic: request.topic,
      messages,
      acks: -1,
      compression: COMPRESSION[request.compression || 'none']
    })
    const baseOffsets = {}
    for (const result of results) {
      if (result.errorCode !== 0) throw new Error(`partition ${result.partition} error ${result.errorCode}`)
      baseOffsets[result.partition] = BigInt(result.baseOffset)
    }
    const nextIndex = {}
    const deliveries = messages.map(message => {
      const partition = partitioner({ topic: request.topic, partitionMetadata, message })
      const index = nextIndex[partition] || 0n
      nextIndex[partition] = index + 1n
      return { partition, offset: Number(baseOffsets[partition] + index) }
    })
    return { deliveries, results }
  } finally {
    await producer.disconnect()
  }
}

// Consumes in a group until `expected` records arrived, committing as it goes,
// then reports the records and the group's committed offsets. With `seek`
// ({partition: offset}) the group starts at the end and seeks back instead of
// reading from the beginning.
async function consume (request) {
  const kafka = connect(request)
  const consumer = kafka.consumer({
    groupId: request.groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200
  })
  const records = []
  let assignment = null
  await consumer.connect()
  try {
    consumer.on(consumer.events.GROUP_JOIN, event => {
      assignment = event.payload.memberAssignment
    })
    await consumer.subscribe({ topics: [request.topic], fromBeginning: !request.seek })
    let done
    const finished = new Promise(resolve => { done = resolve })
    await consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) => {
        records.push({
          partition,
          offset: Number(message.offset),
          key: b64(message.key),
          value: b64(message.value),
          headers: headersToPairs(message.headers),
          timestamp: Number(message.timestamp)
        })
        if (records.length >= request.expected) done()
      }
    })
    for (const [partition, offset] of Object.entries(request.seek || {})) {
      consumer.seek({ topic: request.topic, partition: Number(partition), offset: String(offset) })
    }
    const timeout = setTimeout(done, request.timeoutMs || 30000)
    await finished
    clearTimeout(timeout)
    // Linger so anything beyond `expected` would show up as a failure.
    await new Promise(resolve => setTimeout(resolve, request.lingerMs || 500))
    await consumer.commitOffsets(
      Object.values(records.reduce((latest, r) => {
        if (!latest[r.partition] || latest[r.partition].offset < r.offset) latest[r.partition] = r
        return latest
      }, {})).map(r => ({ topic: request.topic, partition: r.partition, offset: String(r.offset + 1) }))
    )
  } finally {
    await consumer.disconnect()
  }
  const committed = await withAdmin(kafka, admin =>
    admin.fetchOffsets({ groupId: request.groupId, topics: [request.topic] }))
  return { records, assignment, committed }
}

// Earliest/latest offsets and the first offset at or after `timestamp`.
async function offsets (request) {
  return withAdmin(connect(request), async admin => {
    const bounds = await admin.fetchTopicOffsets(request.topic)
    const byTimestamp = await admin.fetchTopicOffsetsByTimestamp(request.topic, request.timestamp)
    return { bounds, byTimestamp }
  })
}

// kafkajs's alterConfigs is the non-incremental AlterConfigs: `configs` become the topic's whole set.
async function alterConfigs (request) {
  return withAdmin(connect(request), async admin => {
    const resource = { type: ConfigResourceTypes.TOPIC, name: request.topic }
    const altered = await admin.alterConfigs({
      validateOnly: false,
      resources: [{ ...resource, configEntries: Object.entries(request.configs).map(([name, value]) => ({ name, value })) }]
    })
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [resource] })
    const reassignments = await admin.listPartitionReassignments({})
    return { altered, described, reassignments }
  })
}

// Runs `transactions` ([{records, commit}]) one after the other with one
// transactional producer: each sends its records to their `partition`, then
// commits or aborts. Reports each send's per-partition results.
async function transactions (request) {
  const producer = connect(request).producer({
    transactionalId: request.transactionalId, idempotent: true, maxInFlightRequests: 1
  })
  await producer.connect()
  try {
    const results = []
    for (const step of request.transactions) {
      const transaction = await producer.transaction()
      const sent = await transaction.send({
        topic: request.topic,
        messages: step.records.map(record => ({ ...toMessage(record), partition: record.partition }))
      })
      if (step.commit) await transaction.commit()
      else await transaction.abort()
      results.push(sent)
    }
    return { results }
  } finally {
    await producer.disconnect()
  }
}

// A group member that runs until SIGTERM: each record's value is written as a
// line of JSON ({"partition", "offset", "value"}) as soon as it is consumed,
// and its offset is committed before the next one (autoCommitThreshold 1), so
// the Python side can stop brokers while it consumes. Leaves the group on SIGTERM.
async function member (request) {
  const consumer = connect(request).consumer({
    groupId: request.groupId, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 200
  })
  const stopped = new Promise(resolve => process.once('SIGTERM', resolve))
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [request.topic], fromBeginning: true })
    await consumer.run({
      autoCommitThreshold: 1,
      eachMessage: async ({ partition, message }) => {
        process.stdout.write(JSON.stringify({ partition, offset: Number(message.offset), value: b64(message.value) }) + '\n')
      }
    })
    await stopped
  } finally {
    await consumer.disconnect()
  }
  return { stopped: true }
}

const COMMANDS = { admin, produce, consume, offsets, alterConfigs, transactions, member }

async function main () {
  const command = COMMANDS[process.argv[2]]
  if (!command) throw new Error(`unknown command ${process.argv[2]}; expected one of ${Object.keys(COMMANDS)}`)
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const result = await command(JSON.parse(Buffer.concat(chunks).toString('utf8')))
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch(error => {
  process.stderr.write(`kafkajs driver failed: ${error.stack || error}\n`)
  process.exit(1)
})
