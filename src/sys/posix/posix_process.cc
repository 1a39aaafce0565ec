#include "sys/posix/posix_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/strings.h"

extern char** environ;

namespace hearth {

namespace {

// In the child between fork and exec: closes every fd from `lowfd` up, whatever the limit.
void CloseFrom(int lowfd) {
  if (syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = lowfd; fd < max; ++fd) close(static_cast<int>(fd));
}

void ClosePair(int p[2]) {
  if (p[0] >= 0) close(p[0]);
  if (p[1] >= 0) close(p[1]);
  p[0] = p[1] = -1;
}

void EmitLines(std::string& buf, const std::function<void(const std::string&)>& cb, bool flush) {
  if (!cb) return;
  size_t pos;
  while ((pos = buf.find_first_of("\r\n")) != std::string::npos) {
    std::string line = buf.substr(0, pos);
    buf.erase(0, pos + 1);
    if (!line.empty()) cb(line);
  }
  if (flush && !buf.empty()) {
    cb(buf);
    buf.clear();
  }
}

}  // namespace

Result<ProcessResult> PosixProcessRunner::Run(const std::vector<std::string>& argv, const ProcessOptions& opt) {
  if (argv.empty()) return Fail(InvalidArgument("empty argv"));
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, exec_pipe[2] = {-1, -1};
  auto close_all = [&] {
    ClosePair(in_pipe);
    ClosePair(out_pipe);
    ClosePair(err_pipe);
    ClosePair(exec_pipe);
  };
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
      pipe2(exec_pipe, O_CLOEXEC)) {
    int err = errno;
    close_all();
    return Fail(Internal(std::string("pipe: ") + strerror(err)));
  }

  // Build argv/envp before fork: no allocation in the child.
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    std::string key = kv.substr(0, kv.find('='));
    if (!opt.extra_env.count(key)) env_store.push_back(kv);
  }
  for (const auto& [k, v] : opt.extra_env) env_store.push_back(k + "=" + v);
  std::vector<char*> cenv;
  for (auto& e : env_store) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close_all();
    return Fail(Internal(std::string("fork: ") + strerror(err)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // Helpers (qemu-img, ...) die with the daemon instead of writing on after a crash; the
    // daemon cleans up after interrupted work when it starts again.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (opt.umask >= 0) umask(static_cast<mode_t>(opt.umask));
    dup2(opt.stdin_fd >= 0 ? opt.stdin_fd : in_pipe[0], 0);
    dup2(opt.stdout_fd >= 0 ? opt.stdout_fd : out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int ep = exec_pipe[1];
    if (ep != 3) {
      dup2(ep, 3);
      ep = 3;
    }
    fcntl(3, F_SETFD, FD_CLOEXEC);
    CloseFrom(4);
    execvpe(cargv[0], cargv.data(), cenv.data());
    int err = errno;
    (void)!write(3, &err, sizeof err);
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);

  int exec_errno = 0;
  ssize_t n = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  close(exec_pipe[0]);
  if (n == sizeof exec_errno) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    waitpid(pid, nullptr, 0);
    return Fail(Unavailable("cannot run '" + argv[0] + "': " + strerror(exec_errno)));
  }

  ProcessResult res;
  size_t in_off = 0;
  int in_fd = in_pipe[1];
  if (opt.stdin_data.empty() || opt.stdin_fd >= 0) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  std::string out_line, err_line;
  auto deadline = std::chrono::steady_clock::now() + opt.timeout;
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int nfds = 0;
    int idx_out = -1, idx_err = -1, idx_in = -1;
    if (out_fd >= 0) idx_out = nfds, fds[nfds++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) idx_err = nfds, fds[nfds++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) idx_in = nfds, fds[nfds++] = {in_fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    int r = poll(fds, nfds, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    auto drain = [&](int& fd, int idx, std::string& acc, std::string& line,
                     const std::function<void(const std::string&)>& cb) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) {
        close(fd);
        fd = -1;
        EmitLines(line, cb, true);
        return;
      }
      if (acc.size() < opt.max_output) acc.append(buf, std::min<size_t>(got, opt.max_output - acc.size()));
      if (cb) {
        line.append(buf, got);
        EmitLines(line, cb, false);
      }
    };
    drain(out_fd, idx_out, res.out, out_line, opt.on_stdout_line);
    drain(err_fd, idx_err, res.err, err_line, opt.on_stderr_line);
    if (idx_in >= 0 && (fds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(in_fd, opt.stdin_data.data() + in_off, opt.stdin_data.size() - in_off);
      if (w > 0) in_off += w;
      if (w < 0 || in_off >= opt.stdin_data.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  return res;
}

Result<int> PosixProcessRunner::SpawnDetached(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return Fail(InvalidArgument("empty argv"));
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Fail(Internal("open " + log_path + ": " + strerror(errno)));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int pid_pipe[2] = {-1, -1};
  if (null_fd < 0 || pipe2(pid_pipe, O_CLOEXEC) != 0) {
    close(log_fd);
    close(null_fd);
    return Fail(Internal(std::string("pipe: ") + strerror(errno)));
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  // Double fork: the intermediate child starts a new session, forks the program and exits,
  // so the program is reparented to init and never becomes our zombie.
  pid_t mid = fork();
  if (mid < 0) {
    int err = errno;
    ClosePair(pid_pipe);
    close(log_fd);
    close(null_fd);
    return Fail(Internal(std::string("fork: ") + strerror(err)));
  }
  if (mid == 0) {
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    pid_t child = fork();
    if (child == 0) {
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      CloseFrom(3);
      execvp(cargv[0], cargv.data());
      dprintf(2, "cannot run '%s': %s\n", cargv[0], strerror(errno));
      _exit(127);
    }
    int32_t v = child;
    (void)!write(pid_pipe[1], &v, sizeof v);
    _exit(child < 0 ? 1 : 0);
  }
  close(pid_pipe[1]);
  close(log_fd);
  close(null_fd);
  int32_t child = -1;
  ssize_t n = read(pid_pipe[0], &child, sizeof child);
  close(pid_pipe[0]);
  while (waitpid(mid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof child || child <= 0) return Fail(Internal("could not start '" + argv[0] + "'"));
  return static_cast<int>(child);
}

}  // namespace hearth
