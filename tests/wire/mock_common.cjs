// What the wire test's two puppet services share (mock_server.js for the Node 0.x line and
// v1/mock_server.js for the 1.x line; see the first for the world file and the HTTP routes): a
// mock puppet whose room add/delete/topic/create change the mock's state and whose sends are
// echoed and logged, the world set-up, the HTTP control endpoint and the process life. Each
// line's script passes its own packages in (`serve(line)`), since the two lines cannot share
// node_modules; CommonJS, so that the 0.x script can require it and the 1.x one import it.
'use strict'

const fs = require('fs')
const http = require('http')
const net = require('net')
const { randomUUID } = require('crypto')


function wirePuppet (line, world, sent) {
  const { PuppetMock, types } = line
  return class WirePuppetMock extends PuppetMock {
    selfContact () { return this.mocker.ContactMock.load(world.self.id) }
    room (roomId) { return this.mocker.RoomMock.load(roomId) }

    async roomAdd (roomId, contactId) {
      const room = this.room(roomId)
      if (!room.payload.memberIdList.includes(contactId)) {
        room.add(this.mocker.ContactMock.load(contactId)).by(this.selfContact())
      }
      await this.dirtyPayload(types.Room, roomId)
    }

    async roomDel (roomId, contactId) {
      this.room(roomId).remove(this.mocker.ContactMock.load(contactId)).by(this.selfContact())
      await this.dirtyPayload(types.Room, roomId)
    }

    async roomTopic (roomId, topic) {
      const room = this.room(roomId)
      if (typeof topic === 'undefined') return room.payload.topic
      room.topic(topic).by(this.selfContact())
      await this.dirtyPayload(types.Room, roomId)
    }

    async roomCreate (contactIdList, topic) {
      const id = randomUUID() + '@chatroom'
      this.mocker.RoomMock.create({
        id,
        topic: topic || '',
        ownerId: world.self.id,
        adminIdList: [],
        memberIdList: [world.self.id, ...contactIdList],
      })
      return id
    }

    async roomMemberList (roomId) { return [...this.room(roomId).payload.memberIdList] }

    async roomMemberRawPayload (roomId, contactId) {
      const contact = this.mocker.contactPayload(contactId)
      return { id: contactId, name: contact.name, roomAlias: contact.roomAlias || '', avatar: '' }
    }

    async messageSendText (conversationId, text, mentionIdList) {
      return this.sendFromSelf(conversationId, { type: types.Text, text }, mentionIdList || [])
    }

    async messageSendFile (conversationId, file) {
      return this.sendFromSelf(conversationId, { type: types.Attachment, filename: file.name }, [])
    }

    sendFromSelf (roomId, content, mentionIdList) {
      const id = randomUUID()
      sent.push({ id, room: roomId, mentions: mentionIdList, ...content })
      // also in the log, which outlives a killed service (MockService.sent_before_crash)
      process.stderr.write('SENT ' + JSON.stringify(sent[sent.length - 1]) + '\n')
      // the service echoes the bot's own messages back to it, as the real one does
      this.mocker.MessageMock.create({
        id, timestamp: Date.now(), [line.talkerKey]: world.self.id, roomId, mentionIdList, ...content,
      })
      this.emit('message', { messageId: id })
      return id
    }
  }
}

function worldBuilder (line, world) {
  return function buildWorld (mocker) {
    const ensureContact = (c) => {
      if (!mocker.cacheContactPayload.has(c.id)) {
        mocker.createContact({ id: c.id, name: c.name, alias: undefined, type: line.types.Individual })
      }
    }
    ensureContact(world.self)
    world.contacts.forEach(ensureContact)
    for (const r of world.rooms) {
      if (!mocker.cacheRoomPayload.has(r.id)) {
        mocker.createRoom({
          id: r.id,
          topic: r.topic,
          ownerId: r.owner || world.self.id,
          adminIdList: [...(r.admins || [])],
          memberIdList: [...r.members],
        })
      }
    }
    // two clients restart the puppet in quick succession: one still logged in only says so again
    if (line.loggedIn(mocker.puppet)) {
      mocker.puppet.emit('login', { contactId: world.self.id })
    } else {
      mocker.login(mocker.ContactMock.load(world.self.id))
    }
    return () => {}
  }
}

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function readJson (req) {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', chunk => { body += chunk })
    req.on('end', () => {
      try { resolve(body ? JSON.parse(body) : {}) } catch (e) { reject(e) }
    })
  })
}

function control (puppet, world, sent) {
  const { mocker } = puppet
  const contact = id => mocker.ContactMock.load(id)
  const routes = {
    'POST /say': b => {
      contact(b.from).say(b.text, (b.mentions || []).map(contact)).to(puppet.room(b.room))
      return { ok: true }
    },
    'POST /join': b => {
      puppet.room(b.room).add(contact(b.contact)).by(contact(b.inviter || world.self.id))
      return { ok: true }
    },
    'POST /leave': b => {
      puppet.room(b.room).remove(contact(b.contact)).by(contact(b.remover || b.contact))
      return { ok: true }
    },
    'POST /topic': b => {
      puppet.room(b.room).topic(b.topic).by(contact(b.changer || world.self.id))
      return { ok: true }
    },
    'POST /scan': b => {
      // the login QR code a real account must scan (status 2: waiting for a scan)
      mocker.scan(b.qrcode, b.status === undefined ? 2 : b.status)
      return { ok: true }
    },
    'GET /sent': () => sent,
  }
  return async (req, res) => {
    let status = 200
    let out
    try {
      const key = `${req.method} ${req.url}`
      if (routes[key]) {
        out = routes[key](await readJson(req))
      } else if (req.method === 'GET' && req.url.startsWith('/rooms/')) {
        const p = puppet.room(decodeURIComponent(req.url.slice('/rooms/'.length))).payload
        out = { id: p.id, topic: p.topic, owner: p.ownerId, members: p.memberIdList }
      } else {
        status = 404
        out = { error: 'no route ' + key }
      }
    } catch (e) {
      status = 500
      out = { error: String(e && e.message) }
    }
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(out))
  }
}

async function main (line) {
  const world = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const sent = []
  const mocker = new line.mock.Mocker()
  mocker.use(worldBuilder(line, world))
  const WirePuppetMock = wirePuppet(line, world, sent)
  const puppet = new WirePuppetMock({ mocker })
  const grpcPort = Number(process.env.WIRE_GRPC_PORT || 0) || await freePort()
  const server = new line.PuppetServer({
    endpoint: `127.0.0.1:${grpcPort}`,
    puppet,
    token: process.env.WECHATY_PUPPET_SERVICE_TOKEN || 'insecure_qunmatrix_wire',
  })
  await server.start()
  const web = http.createServer(control(puppet, world, sent))
  await new Promise(resolve => web.listen(0, '127.0.0.1', resolve))
  process.stdout.write(JSON.stringify({ grpc: grpcPort, http: web.address().port }) + '\n')

  const shutdown = () => {
    web.close()
    server.stop().catch(() => {}).finally(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  // the test owns this process: when its pipe closes, stop
  process.stdin.on('end', shutdown)
  process.stdin.resume()
}

function serve (line) {
  line.log.level(process.env.WECHATY_LOG || 'warn')
  main(line).catch(e => {
    process.stderr.write(String(e && e.stack) + '\n')
    process.exit(1)
  })
}

module.exports = { serve }
