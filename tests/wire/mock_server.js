// A Wechaty puppet service for the wire test: wechaty-puppet-service's PuppetServer hosting
// wechaty-puppet-mock, so that the Python bot talks real gRPC to a mock WeChat on 127.0.0.1.
//
//   node mock_server.js WORLD.json
//
// WORLD.json: {"self": {"id", "name"}, "contacts": [{"id", "name"}],
//              "rooms": [{"id" (must contain "@"), "topic", "members": [ids], "owner", "admins"}]}
// Env: WIRE_GRPC_PORT (0 or unset: a free port), WECHATY_PUPPET_SERVICE_TOKEN.
// Prints one line, {"grpc": PORT, "http": PORT}, once both servers listen.
//
// The stock mock treats room add/delete/topic/create as no-ops and returns no message id; the
// subclass in mock_common.cjs (shared with the 1.x line's v1/mock_server.js) makes them change
// the mock's state (and emit the room events WeChat would).
// The Python client calls stop() then start() on every connect, so the world set-up is
// idempotent. A small HTTP endpoint lets the test drive the conversation:
//   POST /say   {"from", "room", "text", "mentions": [ids]}   a mock contact speaks in a room
//   POST /join  {"room", "contact", "inviter"}                someone is added by someone
//   POST /leave {"room", "contact", "remover"}
//   POST /topic {"room", "topic", "changer"}
//   POST /scan  {"qrcode", "status"}                          the service asks for a QR scan
//   GET  /sent                                                 what the bot sent, in order
//   GET  /rooms/ROOM_ID                                        {id, topic, owner, members}
'use strict'

const { PuppetServer } = require('wechaty-puppet-service')
const { PuppetMock, mock } = require('wechaty-puppet-mock')
const { MessageType, ContactType, PayloadType, log } = require('wechaty-puppet')
const { serve } = require('./mock_common.cjs')

serve({
  PuppetServer,
  PuppetMock,
  mock,
  log,
  types: {
    Text: MessageType.Text,
    Attachment: MessageType.Attachment,
    Individual: ContactType.Individual,
    Room: PayloadType.Room,
  },
  talkerKey: 'fromId',
  loggedIn: puppet => puppet.logonoff(),
})
