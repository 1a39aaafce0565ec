// The server side of one NBD connection, read-only: the subset of the NBD protocol
// (NetworkBlockDevice/nbd doc/proto.md) that QEMU's and libnbd's clients need to read an
// image. Live restore serves a backup's disks to the restored VM's QEMU with it
// (docs/reference/live-restore.md §3.2); the socket side is backup/nbd_server.h.
//
// What it speaks: fixed newstyle negotiation with NO_ZEROES; the options EXPORT_NAME, INFO,
// GO, LIST and ABORT (every other option gets NBD_REP_ERR_UNSUP, so clients fall back to
// simple replies and no block status); the commands READ, FLUSH (a no-op) and DISC. An export
// is read-only and may be read over several connections at once (CAN_MULTI_CONN).
//
// The peer is hostile (a guest that escaped into QEMU controls it): option data is capped at
// kMaxOption bytes and read requests at kMaxRead, offsets are checked for overflow against
// the export's size, and anything that breaks the protocol (a bad magic, a write to the
// read-only export, unknown client flags) ends the session without a reply. Nothing in it
// recurses or allocates more than kMaxRead plus one option.
//
// Thread-safety: a session runs on one thread; the exports it reads must be safe to read from
// several sessions at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"

namespace hearth {

// The connection's bytes. Both calls block; an error (peer gone, timeout) ends the session.
class NbdStream {
 public:
  virtual ~NbdStream() = default;
  virtual Status ReadExact(void* buf, size_t len) = 0;
  virtual Status WriteAll(const void* buf, size_t len) = 0;
  // Negotiation is over and reads begin (a server's handshake deadline ends here).
  virtual void Negotiated() {}
};

// One image a client can read.
class NbdExport {
 public:
  virtual ~NbdExport() = default;
  virtual uint64_t size() const = 0;
  // Appends bytes [offset, offset + len) to `out`; the range is within size(). An error
  // becomes the request's EIO (the session goes on).
  virtual Status Read(uint64_t offset, uint32_t len, std::string* out) = 0;
};

struct NbdSessionLimits {
  static constexpr uint32_t kMaxOption = 8192;      // the spec's 4 KiB name plus its framing
  static constexpr uint32_t kMaxRead = 32u << 20;   // QEMU reads at most 32 MiB per request
  int max_options = 64;                             // negotiation rounds before giving up
};

using NbdExportTable = std::map<std::string, std::shared_ptr<NbdExport>>;
// Called with what went wrong on a request (an export's read error): for the server's log.
using NbdLog = std::function<void(const std::string&)>;

// Runs the handshake, the negotiation and the transmission phase until the client
// disconnects or breaks the protocol. Ok when the client left properly (DISC, ABORT);
// otherwise the reason ("client sent a bad request magic", the stream's error).
Status ServeNbdSession(NbdStream& io, const NbdExportTable& exports, const NbdLog& log,
                       const NbdSessionLimits& limits = {});

}  // namespace hearth
