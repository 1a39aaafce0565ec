#include "core/error.h"

namespace hearth {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kFailedPrecondition: return "failed precondition";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kNotImplemented: return "not implemented";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Error&& Error::WithContext(const std::string& context) && {
  message = context + ": " + message;
  return std::move(*this);
}

Error& Error::WithContext(const std::string& context) & {
  message = context + ": " + message;
  return *this;
}

Error MakeError(ErrorCode code, std::string message) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

Error FieldError(const std::string& field, std::string message) {
  Error e;
  e.code = ErrorCode::kInvalidArgument;
  e.message = "Parameter verification failed.";
  e.fields[field] = std::move(message);
  return e;
}

}  // namespace hearth
