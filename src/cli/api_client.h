// ApiClient: the CLI's view of a hearth (or Proxmox) server. Every CLI verb goes through
// this HTTP API; nothing in cli/ links the services.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "http/https_client.h"

namespace hearth {

struct Credentials {
  std::string token;      // "user@realm!id=secret"
  std::string ticket;     // PVEAuthCookie value
  std::string csrf;
  std::string hint_401;   // what to tell the user when the server answers 401
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;

class ApiClient {
 public:
  ApiClient(std::unique_ptr<HttpsClient> http, Credentials creds) : http_(std::move(http)), creds_(std::move(creds)) {}
  // Returns `data` of the envelope; errors carry the server's message and field errors.
  Result<nlohmann::json> Call(const std::string& method, const std::string& path, const KeyValues& params = {});
  // The whole answer ({"data": …} and the keys beside it, such as the network list's `changes`).
  Result<nlohmann::json> CallEnvelope(const std::string& method, const std::string& path, const KeyValues& params = {});
  // Polls a task until it stops, calling `on_line` for each new log line. Returns the
  // exitstatus ("OK" on success).
  Result<std::string> WaitTask(const std::string& upid, const std::function<void(const std::string&)>& on_line);
  // Uploads a file as multipart/form-data.
  Result<nlohmann::json> Upload(const std::string& path, const KeyValues& fields, const std::string& file_field,
                                const std::string& file_name, const std::string& file_path);

 private:
  Result<nlohmann::json> Send(const std::string& method, const std::string& path, const KeyValues& params, bool envelope);
  std::unique_ptr<HttpsClient> http_;
  Credentials creds_;
};

std::string FormEncode(const KeyValues& params);

}  // namespace hearth
