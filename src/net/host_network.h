// HostNetwork: the node's network configuration as Proxmox's /nodes/{node}/network API sees
// it (pve-manager PVE/API2/Network.pm; docs/reference/pve-network.md), applied to the kernel
// through netlink instead of ifupdown2.
//
// - Edits (Create/Update/Delete) change the *pending* configuration only; Revert drops it.
//   Reads show the pending configuration, and Changes() the diff against the applied one.
// - Apply (a task, srvreload/networking as Proxmox) plans the kernel steps (net_plan.h) and
//   runs them as one transaction: any failure undoes every step that ran.
// - Beyond Proxmox: a successful apply stays *unconfirmed* for `confirm_timeout` seconds.
//   Any API request by the user who applied (after the apply finished) or Confirm() keeps
//   it; otherwise the previous configuration comes back (a srvreload task says so) and the
//   unconfirmed one becomes pending again. A change that cuts the user off cannot lock them
//   out.
// - Interfaces hearth did not create are read-only until adopted (Update with adopt); taking
//   an adopted interface out of the configuration releases it instead of deleting it.
//
// State: the applied and pending configurations and the open apply (its intent, written
// before the first kernel step) live in the Store under per-node meta keys, so a kill -9
// during an apply or during the confirm window is repaired by Restore() at the next start:
// the previous configuration is applied again and the interrupted one is pending.
//
// Thread-safety: all methods may be called from any thread; edits are serialised by one
// mutex, applies and reverts by another (a second apply waits for the first).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "model/host_network.h"
#include "net/host_links.h"
#include "state/store.h"
#include "tasks/task_manager.h"

namespace hearth {

// One interface as GET /nodes/{node}/network shows it.
struct NetIfaceView {
  std::string name;
  std::map<std::string, std::string> opts;  // Proxmox keys, strings (the handler types them)
  bool managed = false;  // in hearth's configuration (false: read-only until adopted)
  bool exists = false;   // a NIC (physical or veth): Proxmox's `exists`
  bool active = false;   // administratively up
  int priority = 0;      // position in the configuration (0: not configured)
  std::vector<std::string> altnames;
};

struct ConfirmWindow {
  std::string user;      // who applied
  int64_t deadline = 0;  // epoch seconds
};

class HostNetwork {
 public:
  // The VMs (vmid and NIC key) whose NICs use a bridge: a bridge in use cannot be deleted.
  using BridgeUsers = std::function<std::vector<std::string>(const std::string& bridge)>;
  static constexpr int kDefaultConfirmSeconds = 120;

  HostNetwork(Store& store, HostLinks& links, TaskManager& tasks, std::string node, BridgeUsers users);
  ~HostNetwork();
  HostNetwork(const HostNetwork&) = delete;
  HostNetwork& operator=(const HostNetwork&) = delete;

  // At daemon start: takes back an apply that was interrupted or never confirmed, then sets
  // the applied configuration up in the kernel. An error is for the log; the daemon goes on.
  Status Restore();

  Result<std::vector<NetIfaceView>> List();
  Result<NetIfaceView> Get(const std::string& iface);
  // The pending changes as a unified diff of /etc/network/interfaces-style texts ("" if none).
  Result<std::string> Changes();

  // POST: `params` are the request's options (type required). Errors name the field (400).
  Status Create(const std::string& iface, std::map<std::string, std::string> params);
  // PUT: `del` lists options to remove; `adopt` takes over an interface hearth did not make.
  Status Update(const std::string& iface, std::map<std::string, std::string> params,
                const std::vector<std::string>& del, bool adopt);
  Status Delete(const std::string& iface);
  Status Revert();

  // Starts the apply task; its UPID. confirm_seconds 0: no confirm window.
  Result<std::string> Apply(const std::string& user, int confirm_seconds);
  // Keeps the applied configuration; kFailedPrecondition when no confirm window is open.
  Status Confirm(const std::string& user);
  // For every authenticated API request: one by the applying user confirms. Cheap when no
  // window is open (one atomic load).
  void NoteRequest(const std::string& authid);
  std::optional<ConfirmWindow> OpenWindow();

 private:
  struct Txn;
  Result<HostNetConfig> Load(const std::string& which);
  Status Save(const std::string& which, const std::optional<HostNetConfig>& config);
  Result<std::optional<Txn>> LoadTxn();
  Status SaveTxn(const std::optional<Txn>& txn);
  Result<HostNetConfig> PendingOrApplied();  // mu_ held
  Status CheckIface(const HostNetConfig& config, const KernelState& kernel, const NetIface& iface);
  Status RunApply(TaskContext& ctx, const std::string& user, int confirm_seconds);
  // Goes back to the configuration before an open or interrupted apply; apply_mu_ held.
  Status TakeBack(const Txn& txn, const std::function<void(const std::string&)>& log);
  void TimerLoop();
  std::string Key(const std::string& which) const { return "net/" + node_ + "/" + which; }

  Store& store_;
  HostLinks& links_;
  TaskManager& tasks_;
  std::string node_;
  BridgeUsers users_;

  std::mutex mu_;        // pending edits
  std::mutex apply_mu_;  // applies, reverts, the confirm window
  std::mutex window_mu_;
  std::condition_variable window_cv_;
  std::optional<ConfirmWindow> window_;  // GUARDED_BY(window_mu_)
  std::atomic<bool> window_open_{false};
  std::optional<std::string> confirm_by_;  // GUARDED_BY(window_mu_): NoteRequest's request
  bool stopping_ = false;                  // GUARDED_BY(window_mu_)
  std::thread timer_;
};

}  // namespace hearth
