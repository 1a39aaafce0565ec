// Error: what went wrong, what kind of failure it is, and (for parameter validation) which
// fields were wrong. Codes are few on purpose: each tells the caller what to do next.
#pragma once

#include <map>
#include <string>
#include <utility>

namespace hearth {

enum class ErrorCode {
  kInvalidArgument,     // the caller's input is wrong; fix it (HTTP 400)
  kUnauthenticated,     // no or bad credentials (HTTP 401)
  kPermissionDenied,    // authenticated, but not allowed (HTTP 403)
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // the named thing exists already
  kFailedPrecondition,  // state forbids it now (VM running, locked...); don't retry blindly
  kAborted,             // a concurrent change got in the way; retry the whole step
  kUnavailable,         // a dependency is down; retry the call later
  kNotImplemented,      // no such route or feature (HTTP 501)
  kInternal,            // a bug or an unexpected failure of the system
};

const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Per-field messages for parameter validation (Proxmox "errors" map).
  std::map<std::string, std::string> fields;

  // Prepends context as an error rises: "start 101: " + "scsi0: qemu-img: exit 1".
  Error&& WithContext(const std::string& context) &&;
  Error& WithContext(const std::string& context) &;
};

Error MakeError(ErrorCode code, std::string message);
inline Error InvalidArgument(std::string m) { return MakeError(ErrorCode::kInvalidArgument, std::move(m)); }
inline Error NotFound(std::string m) { return MakeError(ErrorCode::kNotFound, std::move(m)); }
inline Error AlreadyExists(std::string m) { return MakeError(ErrorCode::kAlreadyExists, std::move(m)); }
inline Error FailedPrecondition(std::string m) { return MakeError(ErrorCode::kFailedPrecondition, std::move(m)); }
inline Error Unavailable(std::string m) { return MakeError(ErrorCode::kUnavailable, std::move(m)); }
inline Error Internal(std::string m) { return MakeError(ErrorCode::kInternal, std::move(m)); }
inline Error Unauthenticated(std::string m) { return MakeError(ErrorCode::kUnauthenticated, std::move(m)); }
inline Error PermissionDenied(std::string m) { return MakeError(ErrorCode::kPermissionDenied, std::move(m)); }
inline Error Aborted(std::string m) { return MakeError(ErrorCode::kAborted, std::move(m)); }

// A parameter validation failure naming one field (HTTP 400, Proxmox "errors" map).
Error FieldError(const std::string& field, std::string message);

}  // namespace hearth
