// The wire test's puppet service on the Node 1.x line (wechaty-puppet-service 1.19, wechaty-puppet
// 1.20, wechaty-puppet-mock 1.18; ES modules): the same interface as ../mock_server.js, which
// serves the 0.x line. The 1.x service silently ignores setting a room topic (field numbers moved
// in its protocol), so the Python side sees NotSupported there.
//
//   node v1/mock_server.js WORLD.json
//
// WORLD.json: {"self": {"id", "name"}, "contacts": [{"id", "name"}],
//              "rooms": [{"id" (must contain "@"), "topic", "members": [ids], "owner", "admins"}]}
// Env: WIRE_GRPC_PORT (0 or unset: a free port), WECHATY_PUPPET_SERVICE_TOKEN.
// Prints one line, {"grpc": PORT, "http": PORT}, once both servers listen.
//
// The stock mock treats room add/delete/topic/create as no-ops and returns no message id; the
// subclass below makes them change the mock's state (and emit the room events WeChat would).
// The Python client calls stop() then start() on every connect, so the world set-up is
// idempotent. A small HTTP endpoint lets the test drive the conversation:
//   POST /say   {"from", "room", "text", "mentions": [ids]}   a mock contact speaks in a room
//   POST /join  {"room", "contact", "inviter"}                someone is added by someone
//   POST /leave {"room", "contact", "remover"}
//   POST /topic {"room", "topic", "changer"}
//   POST /scan  {"qrcode", "status"}                          the service asks for a QR scan
//   GET  /sent                                                 what the bot sent, in order
//   GET  /rooms/ROOM_ID                                        {id, topic, owner, members}
import { PuppetServer } from 'wechaty-puppet-service'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import * as PUPPET from 'wechaty-puppet'
import common from '../mock_common.cjs'

common.serve({
  PuppetServer,
  PuppetMock,
  mock,
  log: PUPPET.log,
  types: {
    Text: PUPPET.types.Message.Text,
    Attachment: PUPPET.types.Message.Attachment,
    Individual: PUPPET.types.Contact.Individual,
    Room: PUPPET.types.Payload.Room,
  },
  talkerKey: 'talkerId',
  loggedIn: puppet => puppet.isLoggedIn,
})
