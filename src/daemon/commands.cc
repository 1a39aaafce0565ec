#include "daemon/commands.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <iostream>

#include "core/strings.h"
#include "daemon/daemon.h"
#include "sys/clock.h"
#include "sys/console.h"
#include "sys/files.h"
#include "sys/posix/posix_file_system.h"

namespace hearth {
namespace {

// Runs `fn` with an AccessService on the data dir (the local admin verbs); returns the exit code.
// `must_exist`: refuse a data dir without a database instead of creating a new, empty one
// (a typo in --data-dir would otherwise print tickets or tokens no daemon knows).
int WithAccess(const std::string& data_dir, const std::function<Status(AccessService&)>& fn, bool must_exist = false) {
  if (must_exist && !PathExists(data_dir + "/hearth.db"))
    return ReportError(NotFound("no hearth data dir at '" + data_dir + "' (" + data_dir +
                                "/hearth.db does not exist): pass the --data-dir your daemon uses"));
  auto store = OpenStore(data_dir);
  if (!store) return ReportError(store.error());
  PosixFileSystem fs;
  auto tickets = LoadOrCreateTicketAuthority(fs, data_dir);
  if (!tickets) return ReportError(tickets.error());
  SystemClock clock;
  LibPamAuthenticator pam;
  AccessService access(**store, clock, **tickets, pam);
  auto st = fn(access);
  return st ? 0 : ReportError(st.error());
}

}  // namespace

void AddDaemonCommands(CLI::App& app, int& rc) {
  // ---- serve
  static DaemonOptions dopt;
  auto* serve = app.add_subcommand("serve", "Run the hearth daemon");
  serve->add_option("--data-dir", dopt.data_dir, "State, storage and keys")->capture_default_str();
  serve->add_option("--run-dir", dopt.run_dir, "Runtime sockets and pid files (default DATA_DIR/run)");
  serve->add_option("--listen", dopt.listen, "HTTPS address:port")->capture_default_str();
  serve->add_option("--node", dopt.node, "Node name (default: host name)");
  serve->add_option("--accel", dopt.accel, "auto|kvm|tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}))->capture_default_str();
  serve->add_option("--qemu-user", dopt.qemu_user, "Unprivileged user QEMU runs as")->capture_default_str();
  serve->add_option("--qemu", dopt.qemu_binary, "QEMU system emulator to run")->capture_default_str();
  serve->add_option("--image-cache", dopt.image_cache, "Where built images are kept (default DATA_DIR/cache/images)");
  serve->add_option("--threads", dopt.threads, "API I/O threads")->capture_default_str();
  serve->add_option("--client-timeout", dopt.client_timeout,
                    "Seconds a client may take to send a request header or body chunk, or stay idle")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  serve->callback([&] { rc = RunDaemon(dopt); });

  // ---- local admin verbs (work on the data dir directly)
  static std::string admin_dir = "/var/lib/hearth";
  auto* user = app.add_subcommand("user", "Manage users (local, on the data dir)");
  user->require_subcommand(1);
  auto* user_add = user->add_subcommand("add", "Add a user (--update: change an existing one)");
  static std::string userid;
  static bool password_stdin = false, admin = false, user_update = false;
  user_add->add_option("userid", userid, "name@pve or name@pam")->required();
  user_add->add_flag("--password-stdin", password_stdin, "Read the password from standard input");
  user_add->add_flag("--admin", admin, "Grant every privilege");
  user_add->add_flag("--update", user_update, "Replace an existing user's password and role");
  user_add->add_option("--data-dir", admin_dir)->capture_default_str();
  user_add->callback([&] {
    rc = WithAccess(admin_dir, [&](AccessService& access) -> Status {
      std::string pw;
      if (EndsWith(userid, "@pve")) pw = ReadSecret(password_stdin, "Password for " + userid + ": ");
      if (auto st = access.AddUser(userid, pw, admin, user_update); !st) {
        Error e = st.error();
        if (e.code == ErrorCode::kAlreadyExists) e.message += " (add --update to change its password or role)";
        return Fail(e);
      }
      std::cout << "user " << userid << (admin ? " (administrator)" : "") << " saved\n";
      return Ok();
    });
  });

  auto* ticket = app.add_subcommand(
      "ticket", "Print a ticket and CSRF token for a user, without a password (local: root on the host only)");
  static std::string ticket_user = "root@pam";
  ticket->add_option("userid", ticket_user, "name@realm")->capture_default_str();
  ticket->add_option("--data-dir", admin_dir)->capture_default_str();
  ticket->callback([&] {
    auto print_ticket = [&](AccessService& access) -> Status {
      HEARTH_ASSIGN_OR_RETURN(LoginResult r, access.IssueLocalTicket(ticket_user));
      // The same shape as POST /access/ticket's data.
      std::cout << nlohmann::json{{"username", r.username}, {"ticket", r.ticket}, {"CSRFPreventionToken", r.csrf_token}}
                       .dump()
                << "\n";
      return Ok();
    };
    rc = WithAccess(admin_dir, print_ticket, /*must_exist=*/true);
  });

  auto* token = app.add_subcommand("token", "Manage API tokens (local, on the data dir)");
  token->require_subcommand(1);
  auto* token_add = token->add_subcommand("add", "Create an API token and print its secret once");
  static std::string tokenid, comment;
  static bool token_replace = false;
  token_add->add_option("tokenid", tokenid, "user@realm!name")->required();
  token_add->add_option("--comment", comment);
  token_add->add_flag("--replace", token_replace, "Issue a new secret for an existing token (the old one stops working)");
  token_add->add_option("--data-dir", admin_dir)->capture_default_str();
  token_add->callback([&] {
    rc = WithAccess(admin_dir, [&](AccessService& access) -> Status {
      auto secret = access.AddToken(tokenid, comment, token_replace);
      if (!secret) {
        Error e = secret.error();
        if (e.fields.count("tokenid") && e.fields["tokenid"] == "Token already exists.")
          e = AlreadyExists("token '" + tokenid + "' already exists (add --replace to issue a new secret)");
        return Fail(e);
      }
      std::cout << tokenid << "=" << *secret << "\n";
      std::cerr << "Use it as HEARTH_TOKEN='" << tokenid << "=" << *secret << "' or in the header "
                << "'Authorization: PVEAPIToken=" << tokenid << "=<secret>'. The secret is not shown again.\n";
      return Ok();
    }, /*must_exist=*/true);
  });

}

}  // namespace hearth
