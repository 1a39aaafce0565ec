// HostNetwork's state, apply transaction and confirm window (edits and views are in
// host_network_edit.cc).
#include "net/host_network.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "core/text_diff.h"
#include "net/net_plan.h"

namespace hearth {

// An apply in flight or waiting for its confirmation: what to go back to.
struct HostNetwork::Txn {
  HostNetConfig previous;  // the last configuration known good
  HostNetConfig target;    // the one being applied or waiting for confirmation
  std::string user;
  int64_t deadline = 0;  // 0 while the kernel steps run

  std::string ToJson() const {
    return nlohmann::json{{"previous", nlohmann::json::parse(previous.ToJson())},
                          {"target", nlohmann::json::parse(target.ToJson())},
                          {"user", user},
                          {"deadline", deadline}}
        .dump();
  }
  static Result<Txn> FromJson(const std::string& text) {
    try {
      auto j = nlohmann::json::parse(text);
      Txn t;
      HEARTH_ASSIGN_OR_RETURN(t.previous, HostNetConfig::FromJson(j.at("previous").dump()));
      HEARTH_ASSIGN_OR_RETURN(t.target, HostNetConfig::FromJson(j.at("target").dump()));
      t.user = j.at("user").get<std::string>();
      t.deadline = j.at("deadline").get<int64_t>();
      return t;
    } catch (const nlohmann::json::exception& e) {
      return Fail(Internal(std::string("network apply record is damaged: ") + e.what()));
    }
  }
};

namespace {
int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }
}  // namespace

HostNetwork::HostNetwork(Store& store, HostLinks& links, TaskManager& tasks, std::string node, BridgeUsers users)
    : store_(store), links_(links), tasks_(tasks), node_(std::move(node)), users_(std::move(users)) {
  timer_ = std::thread([this] { TimerLoop(); });
}

HostNetwork::~HostNetwork() {
  {
    std::lock_guard lock(window_mu_);
    stopping_ = true;
  }
  window_cv_.notify_all();
  timer_.join();
}

Result<HostNetConfig> HostNetwork::Load(const std::string& which) {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(Key(which)));
  if (!text) return HostNetConfig{};
  return HostNetConfig::FromJson(*text);
}

Status HostNetwork::Save(const std::string& which, const std::optional<HostNetConfig>& config) {
  // An absent pending configuration is stored as "" (the Store has no delete for meta keys).
  return store_.PutMeta(Key(which), config ? config->ToJson() : "");
}

Result<std::optional<HostNetwork::Txn>> HostNetwork::LoadTxn() {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(Key("txn")));
  if (!text || text->empty()) return std::optional<Txn>();
  HEARTH_ASSIGN_OR_RETURN(auto txn, Txn::FromJson(*text));
  return std::optional<Txn>(std::move(txn));
}

Status HostNetwork::SaveTxn(const std::optional<Txn>& txn) { return store_.PutMeta(Key("txn"), txn ? txn->ToJson() : ""); }

Result<HostNetConfig> HostNetwork::PendingOrApplied() {
  HEARTH_ASSIGN_OR_RETURN(auto text, store_.GetMeta(Key("pending")));
  if (text && !text->empty()) return HostNetConfig::FromJson(*text);
  return Load("applied");
}

Result<std::string> HostNetwork::Changes() {
  std::lock_guard lock(mu_);
  HEARTH_ASSIGN_OR_RETURN(auto pending_text, store_.GetMeta(Key("pending")));
  if (!pending_text || pending_text->empty()) return std::string();
  HEARTH_ASSIGN_OR_RETURN(auto pending, HostNetConfig::FromJson(*pending_text));
  HEARTH_ASSIGN_OR_RETURN(auto applied, Load("applied"));
  return UnifiedDiff("/etc/network/interfaces", "/etc/network/interfaces.new", applied.InterfacesText(),
                     pending.InterfacesText());
}

Status HostNetwork::Revert() {
  std::lock_guard lock(mu_);
  return Save("pending", std::nullopt);
}

Status HostNetwork::TakeBack(const Txn& txn, const std::function<void(const std::string&)>& log) {
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  auto steps = PlanApply(kernel, txn.target, txn.previous);
  log("going back to the previous network configuration (" + std::to_string(steps.size()) + " steps)");
  HEARTH_TRY(ApplySteps(links_, steps, log));
  {
    std::lock_guard lock(mu_);
    HEARTH_TRY(Save("applied", txn.previous));
    // The configuration that was taken back is pending again, to be fixed and re-applied.
    HEARTH_TRY(Save("pending", txn.target == txn.previous ? std::nullopt : std::optional(txn.target)));
  }
  HEARTH_TRY(SaveTxn(std::nullopt));
  std::lock_guard lock(window_mu_);
  window_.reset();
  window_open_ = false;
  return Ok();
}

Status HostNetwork::Restore() {
  std::lock_guard apply(apply_mu_);
  auto log = [](const std::string& line) { spdlog::info("network: {}", line); };
  HEARTH_ASSIGN_OR_RETURN(auto txn, LoadTxn());
  if (txn) {
    spdlog::warn("network: the last apply (by {}) was {}; taking it back", txn->user,
                 txn->deadline ? "never confirmed" : "interrupted");
    return TakeBack(*txn, log);
  }
  HEARTH_ASSIGN_OR_RETURN(auto applied, Load("applied"));
  if (applied.ifaces.empty()) return Ok();
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  auto steps = PlanApply(kernel, applied, applied);
  if (steps.empty()) return Ok();
  spdlog::info("network: setting up the applied configuration ({} steps)", steps.size());
  return ApplySteps(links_, steps, log);
}

Result<std::string> HostNetwork::Apply(const std::string& user, int confirm_seconds) {
  return tasks_.Start({"srvreload", "networking", user, 0, {}}, [this, user, confirm_seconds](TaskContext& ctx) {
    return RunApply(ctx, user, confirm_seconds);
  });
}

Status HostNetwork::RunApply(TaskContext& ctx, const std::string& user, int confirm_seconds) {
  std::lock_guard apply(apply_mu_);
  auto log = [&ctx](const std::string& line) { ctx.Log(line); };
  HostNetConfig applied, wanted;
  {
    std::lock_guard lock(mu_);
    HEARTH_ASSIGN_OR_RETURN(applied, Load("applied"));
    HEARTH_ASSIGN_OR_RETURN(wanted, PendingOrApplied());
  }
  HEARTH_ASSIGN_OR_RETURN(auto open, LoadTxn());
  // While an earlier apply waits for its confirmation, its previous configuration stays the
  // one to go back to: the current one was never confirmed.
  Txn txn{open ? open->previous : applied, wanted, user, 0};
  HEARTH_ASSIGN_OR_RETURN(auto kernel, links_.Read());
  auto steps = PlanApply(kernel, applied, wanted);
  ctx.Log(steps.empty() ? "the kernel already has this configuration" : "applying " + std::to_string(steps.size()) +
                                                                             " network changes");
  HEARTH_TRY(SaveTxn(txn));  // the intent, before the first kernel step
  if (auto done = ApplySteps(links_, steps, log); !done) {
    (void)SaveTxn(open);
    return Fail(std::move(done.error()).WithContext("apply failed, the previous configuration is back"));
  }
  {
    std::lock_guard lock(mu_);
    HEARTH_TRY(Save("applied", wanted));
    HEARTH_TRY(Save("pending", std::nullopt));
  }
  if (confirm_seconds <= 0 || txn.previous == wanted) {
    HEARTH_TRY(SaveTxn(std::nullopt));
    std::lock_guard lock(window_mu_);
    window_.reset();
    window_open_ = false;
    return Ok();
  }
  txn.deadline = Now() + confirm_seconds;
  HEARTH_TRY(SaveTxn(txn));
  {
    std::lock_guard lock(window_mu_);
    window_ = ConfirmWindow{user, txn.deadline};
    window_open_ = true;
  }
  window_cv_.notify_all();
  ctx.Log("applied; confirm within " + std::to_string(confirm_seconds) + " s (any API request by " + user +
          ", or `hearth net confirm`), or the previous configuration comes back");
  return Ok();
}

std::optional<ConfirmWindow> HostNetwork::OpenWindow() {
  std::lock_guard lock(window_mu_);
  return window_;
}

Status HostNetwork::Confirm(const std::string& user) {
  std::lock_guard apply(apply_mu_);
  {
    std::lock_guard lock(window_mu_);
    if (!window_) return Fail(FailedPrecondition("no network configuration is waiting for confirmation"));
  }
  HEARTH_TRY(SaveTxn(std::nullopt));
  std::lock_guard lock(window_mu_);
  spdlog::info("network: configuration applied by {} confirmed by {}", window_->user, user);
  window_.reset();
  window_open_ = false;
  return Ok();
}

void HostNetwork::NoteRequest(const std::string& authid) {
  if (!window_open_.load(std::memory_order_relaxed)) return;
  {
    std::lock_guard lock(window_mu_);
    if (!window_ || window_->user != authid || confirm_by_.has_value()) return;
    confirm_by_ = authid;  // the timer thread confirms: it writes to the store, off this thread
  }
  window_cv_.notify_all();
}

void HostNetwork::TimerLoop() {
  std::unique_lock lock(window_mu_);
  while (!stopping_) {
    if (confirm_by_) {
      std::string by = *confirm_by_;
      lock.unlock();
      (void)Confirm(by);
      lock.lock();
      confirm_by_.reset();
      continue;
    }
    if (!window_) {
      window_cv_.wait(lock);
      continue;
    }
    auto deadline = std::chrono::system_clock::from_time_t(static_cast<time_t>(window_->deadline));
    if (std::chrono::system_clock::now() < deadline) {
      window_cv_.wait_until(lock, deadline);
      continue;
    }
    std::string user = window_->user;
    int64_t at = window_->deadline;
    window_.reset();  // the revert task owns it now
    window_open_ = false;
    lock.unlock();
    auto started = tasks_.Start({"srvreload", "networking", user, 0, {}}, [this, at](TaskContext& ctx) -> Status {
      std::lock_guard apply(apply_mu_);
      HEARTH_ASSIGN_OR_RETURN(auto txn, LoadTxn());
      if (!txn || txn->deadline != at) {
        ctx.Log("the configuration was confirmed meanwhile");
        return Ok();
      }
      ctx.Log("the network configuration applied by " + txn->user + " was not confirmed in time");
      return TakeBack(*txn, [&ctx](const std::string& line) { ctx.Log(line); });
    });
    if (!started) spdlog::error("network: cannot start the revert task: {}", started.error().message);
    lock.lock();
  }
}

}  // namespace hearth
