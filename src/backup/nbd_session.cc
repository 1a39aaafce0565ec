// ServeNbdSession: the numbers are doc/proto.md's; the order of checks is "read a bounded
// header, check it, then read or answer".
#include "backup/nbd_session.h"

#include <cstring>
#include <vector>

namespace hearth {
namespace {

constexpr uint64_t kNbdMagic = 0x4e42444d41474943;   // "NBDMAGIC"
constexpr uint64_t kOptMagic = 0x49484156454F5054;   // "IHAVEOPT"
constexpr uint64_t kReplyMagic = 0x3e889045565a9;    // option replies
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;

constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;

constexpr uint32_t kOptExportName = 1, kOptAbort = 2, kOptList = 3, kOptInfo = 6, kOptGo = 7;
constexpr uint32_t kRepAck = 1, kRepServer = 2, kRepInfo = 3;
constexpr uint32_t kRepErrUnsup = 0x80000001, kRepErrInvalid = 0x80000003, kRepErrUnknown = 0x80000006;
constexpr uint16_t kInfoExport = 0;

constexpr uint16_t kTxHasFlags = 1 << 0, kTxReadOnly = 1 << 1, kTxCanMultiConn = 1 << 8;
constexpr uint16_t kTransmissionFlags = kTxHasFlags | kTxReadOnly | kTxCanMultiConn;

constexpr uint16_t kCmdRead = 0, kCmdWrite = 1, kCmdDisc = 2, kCmdFlush = 3, kCmdTrim = 4, kCmdWriteZeroes = 6;
constexpr uint32_t kEio = 5, kEinval = 22, kEperm = 1;

void Put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}
void Put32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void Put64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t Get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

class Session {
 public:
  Session(NbdStream& io, const NbdExportTable& exports, const NbdLog& log, const NbdSessionLimits& limits)
      : io_(io), exports_(exports), log_(log), limits_(limits) {}

  Status Run() {
    std::string hello;
    Put64(hello, kNbdMagic);
    Put64(hello, kOptMagic);
    Put16(hello, kFlagFixedNewstyle | kFlagNoZeroes);
    HEARTH_TRY(io_.WriteAll(hello.data(), hello.size()));
    uint8_t cf[4];
    HEARTH_TRY(io_.ReadExact(cf, 4));
    uint32_t client_flags = static_cast<uint32_t>(Get(cf, 4));
    if (client_flags & ~uint32_t{kFlagFixedNewstyle | kFlagNoZeroes}) return Fail(InvalidArgument("client sent unknown flags"));
    if (!(client_flags & kFlagFixedNewstyle)) return Fail(InvalidArgument("client does not speak fixed newstyle"));
    no_zeroes_ = client_flags & kFlagNoZeroes;
    HEARTH_ASSIGN_OR_RETURN(bool go, Negotiate());
    if (!go) return Ok();
    io_.Negotiated();
    return Transmit();
  }

 private:
  Status Reply(uint32_t option, uint32_t type, const std::string& data = "") {
    std::string r;
    Put64(r, kReplyMagic);
    Put32(r, option);
    Put32(r, type);
    Put32(r, static_cast<uint32_t>(data.size()));
    r += data;
    return io_.WriteAll(r.data(), r.size());
  }

  // true: an export was chosen and transmission starts; false: the client aborted.
  Result<bool> Negotiate() {
    for (int round = 0; round < limits_.max_options; ++round) {
      uint8_t h[16];
      HEARTH_TRY(io_.ReadExact(h, sizeof h));
      if (Get(h, 8) != kOptMagic) return Fail(InvalidArgument("client sent a bad option magic"));
      uint32_t option = static_cast<uint32_t>(Get(h + 8, 4));
      uint32_t len = static_cast<uint32_t>(Get(h + 12, 4));
      if (len > NbdSessionLimits::kMaxOption) return Fail(InvalidArgument("client sent an option of " + std::to_string(len) + " bytes"));
      std::string data(len, '\0');
      if (len) HEARTH_TRY(io_.ReadExact(data.data(), len));
      const auto* d = reinterpret_cast<const uint8_t*>(data.data());
      switch (option) {
        case kOptAbort:
          (void)Reply(option, kRepAck);  // the client may already be gone
          return false;
        case kOptExportName: {
          // The old way: no error reply exists, so an unknown name closes the connection.
          auto it = exports_.find(data);
          if (it == exports_.end()) return Fail(NotFound("client asked for an unknown export"));
          export_ = it->second;
          std::string r;
          Put64(r, export_->size());
          Put16(r, kTransmissionFlags);
          if (!no_zeroes_) r.append(124, '\0');
          HEARTH_TRY(io_.WriteAll(r.data(), r.size()));
          return true;
        }
        case kOptList: {
          if (len) {
            HEARTH_TRY(Reply(option, kRepErrInvalid));
            break;
          }
          for (const auto& [name, e] : exports_) {
            std::string r;
            Put32(r, static_cast<uint32_t>(name.size()));
            r += name;
            HEARTH_TRY(Reply(option, kRepServer, r));
          }
          HEARTH_TRY(Reply(option, kRepAck));
          break;
        }
        case kOptInfo:
        case kOptGo: {
          // u32 name length, name, u16 count, count x u16 info requests (ignored: only the
          // mandatory NBD_INFO_EXPORT is sent).
          if (len < 6) {
            HEARTH_TRY(Reply(option, kRepErrInvalid));
            break;
          }
          uint64_t name_len = Get(d, 4);
          if (name_len > len - 6 || Get(d + 4 + name_len, 2) * 2 != len - 6 - name_len) {
            HEARTH_TRY(Reply(option, kRepErrInvalid));
            break;
          }
          auto it = exports_.find(data.substr(4, name_len));
          if (it == exports_.end()) {
            HEARTH_TRY(Reply(option, kRepErrUnknown));
            break;
          }
          std::string info;
          Put16(info, kInfoExport);
          Put64(info, it->second->size());
          Put16(info, kTransmissionFlags);
          HEARTH_TRY(Reply(option, kRepInfo, info));
          HEARTH_TRY(Reply(option, kRepAck));
          if (option == kOptGo) {
            export_ = it->second;
            return true;
          }
          break;
        }
        default:  // STARTTLS, STRUCTURED_REPLY, SET_META_CONTEXT, ...
          HEARTH_TRY(Reply(option, kRepErrUnsup));
      }
    }
    return Fail(InvalidArgument("client sent too many options"));
  }

  Status SimpleReply(uint64_t cookie, uint32_t error, const std::string* data) {
    std::string r;
    Put32(r, kSimpleReplyMagic);
    Put32(r, error);
    Put64(r, cookie);
    HEARTH_TRY(io_.WriteAll(r.data(), r.size()));
    if (data && !data->empty()) HEARTH_TRY(io_.WriteAll(data->data(), data->size()));
    return Ok();
  }

  Status Transmit() {
    std::string buf;
    while (true) {
      uint8_t h[28];
      HEARTH_TRY(io_.ReadExact(h, sizeof h));
      if (Get(h, 4) != kRequestMagic) return Fail(InvalidArgument("client sent a bad request magic"));
      uint16_t type = static_cast<uint16_t>(Get(h + 6, 2));
      uint64_t cookie = Get(h + 8, 8);
      uint64_t offset = Get(h + 16, 8);
      uint32_t len = static_cast<uint32_t>(Get(h + 24, 4));
      switch (type) {
        case kCmdRead: {
          uint64_t size = export_->size();
          if (len > NbdSessionLimits::kMaxRead || offset > size || len > size - offset) {
            HEARTH_TRY(SimpleReply(cookie, kEinval, nullptr));
            break;
          }
          buf.clear();
          if (auto st = export_->Read(offset, len, &buf); !st || buf.size() != len) {
            if (log_) log_(st ? "short read at " + std::to_string(offset) : st.error().message);
            HEARTH_TRY(SimpleReply(cookie, kEio, nullptr));
            break;
          }
          HEARTH_TRY(SimpleReply(cookie, 0, &buf));
          break;
        }
        case kCmdFlush:
          HEARTH_TRY(SimpleReply(cookie, 0, nullptr));
          break;
        case kCmdDisc:
          return Ok();
        case kCmdWrite:  // its payload would follow: the export is read-only, so end it here
          return Fail(PermissionDenied("client wrote to a read-only export"));
        case kCmdTrim:
        case kCmdWriteZeroes:
          HEARTH_TRY(SimpleReply(cookie, kEperm, nullptr));
          break;
        default:
          HEARTH_TRY(SimpleReply(cookie, kEinval, nullptr));
      }
    }
  }

  NbdStream& io_;
  const NbdExportTable& exports_;
  const NbdLog& log_;
  NbdSessionLimits limits_;
  bool no_zeroes_ = false;
  std::shared_ptr<NbdExport> export_;
};

}  // namespace

Status ServeNbdSession(NbdStream& io, const NbdExportTable& exports, const NbdLog& log, const NbdSessionLimits& limits) {
  return Session(io, exports, log, limits).Run();
}

}  // namespace hearth
