#include "images/image_builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "core/strings.h"
#include "core/units.h"
#include "sys/files.h"
#include "sys/random_source.h"

namespace hearth {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kPartitionOffset = kMiB;  // partition 1 starts at sector 2048

Status WriteInto(FileSystem& files, const std::string& rootfs, const std::string& rel, const std::string& content, int mode = 0644) {
  std::string path = rootfs + "/" + rel;
  // Directories of the guest's file system: world-readable as in any Debian system, and
  // existing ones keep their modes.
  std::string dir = path.substr(0, path.rfind('/'));
  if (!PathExists(dir)) HEARTH_TRY(MakeDirs(dir, 0755));
  return WriteFileAtomic(files, path, content, mode);
}

}  // namespace

Status ImageBuilder::Run(const std::vector<std::string>& argv, const LogFn& log, std::chrono::seconds timeout,
                         const std::string& stdin_data) {
  ProcessOptions opt;
  opt.timeout = timeout;
  opt.stdin_data = stdin_data;
  opt.umask = 022;  // files made inside the guest's root filesystem keep Debian's usual modes
  // mmdebstrap reports its steps on stderr ("I: ..."); show them as progress.
  opt.on_stderr_line = [&](const std::string& line) {
    if (log && (StartsWith(line, "I: ") || StartsWith(line, "E: ") || StartsWith(line, "W: "))) log(line);
  };
  HEARTH_ASSIGN_OR_RETURN(ProcessResult r, runner_.Run(argv, opt));
  if (r.exit_code != 0 || r.timed_out) return Fail(Internal("image build: " + DescribeFailure(argv, r)));
  return Ok();
}

Result<std::string> ImageBuilder::Ensure(const ImageRecipe& recipe, const LogFn& log, bool* built) {
  std::string dir = cache_dir_ + "/" + recipe.Hash();
  std::string out = dir + "/image.qcow2";
  if (built) *built = false;
  std::lock_guard lock(build_mu_);
  if (PathExists(out)) {
    if (log) log("image " + recipe.Hash() + " is cached: " + out);
    return out;
  }
  HEARTH_TRY(MakeDirs(dir));
  std::string work = cache_dir_ + "/.build-" + recipe.Hash() + "-" + RandomHex(8);
  HEARTH_TRY(MakeDirs(work, 0700));
  auto started = std::chrono::steady_clock::now();
  Status st = Build(recipe, work, out + ".new", log);
  std::error_code ec;
  fs::remove_all(work, ec);
  if (!st) {
    ::unlink((out + ".new").c_str());
    return Fail(st.error());
  }
  HEARTH_TRY(WriteFileAtomic(fs_, dir + "/recipe.txt", recipe.Canonical()));
  if (::rename((out + ".new").c_str(), out.c_str()) != 0) return Fail(Internal("cannot store " + out));
  if (built) *built = true;
  if (log) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    log("built image " + recipe.Hash() + " in " + std::to_string(static_cast<int>(secs)) + " s");
  }
  return out;
}

Status ImageBuilder::Build(const ImageRecipe& recipe, const std::string& work, const std::string& out, const LogFn& log) {
  std::string rootfs = work + "/rootfs";
  std::vector<std::string> pkgs = BaseImagePackages();
  pkgs.insert(pkgs.end(), recipe.packages.begin(), recipe.packages.end());
  if (log) log("mmdebstrap: building a Debian " + recipe.release + " root filesystem (" + std::to_string(pkgs.size()) + " packages and their dependencies)");
  HEARTH_TRY(Run({"mmdebstrap", "--variant=apt", "--include=" + Join(pkgs, ","),
                  "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
                  "--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=path-exclude=/usr/share/info/*",
                  "--dpkgopt=path-exclude=/usr/share/lintian/*", recipe.release, rootfs,
                  "deb http://deb.debian.org/debian " + recipe.release + " main",
                  "deb http://deb.debian.org/debian " + recipe.release + "-updates main",
                  "deb http://deb.debian.org/debian-security " + recipe.release + "-security main"},
                 log, std::chrono::minutes(30), ""));
  HEARTH_TRY(Customize(recipe, rootfs, log));
  std::string raw = work + "/disk.raw";
  HEARTH_TRY(MakeBootableDisk(recipe, rootfs, raw, work, log));
  if (log) log("compressing the disk image");
  return Run({"qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, out}, log, std::chrono::minutes(20));
}

Status ImageBuilder::Customize(const ImageRecipe& recipe, const std::string& root, const LogFn& log) {
  if (log) log("configuring the image: cloud-init, sshd, serial console, locale, keyboard, time zone");
  // mmdebstrap's apt variant resolves usrmerge, which drags in perl: drop them (46 MiB).
  (void)Run({"chroot", root, "dpkg", "--purge", "usrmerge", "libfile-find-rule-perl", "libnumber-compare-perl",
             "libtext-glob-perl", "perl"}, nullptr, std::chrono::minutes(5));
  // Every clone must be unique: no machine id, host keys or host name baked in.
  HEARTH_TRY(WriteFileAtomic(fs_, root + "/etc/machine-id", "", 0644));
  for (const auto& e : fs::directory_iterator(root + "/etc/ssh"))
    if (StartsWith(e.path().filename().string(), "ssh_host_")) fs::remove(e.path());
  ::unlink((root + "/etc/resolv.conf").c_str());
  HEARTH_TRY(WriteInto(fs_, root, "etc/hostname", "debian\n"));
  HEARTH_TRY(WriteInto(fs_, root, "etc/fstab", "LABEL=debroot / ext4 defaults,errors=remount-ro 0 1\n"));
  HEARTH_TRY(WriteInto(fs_, root, "etc/default/locale", "LANG=" + recipe.locale + "\n"));
  if (recipe.locale != "C.UTF-8") {
    HEARTH_TRY(WriteInto(fs_, root, "etc/locale.gen", recipe.locale + " UTF-8\n"));
    HEARTH_TRY(Run({"chroot", root, "locale-gen"}, log, std::chrono::minutes(5)));
  }
  std::string layout = recipe.keyboard.substr(0, recipe.keyboard.find('-'));
  std::string variant = recipe.keyboard.find('-') == std::string::npos ? "" : recipe.keyboard.substr(recipe.keyboard.find('-') + 1);
  HEARTH_TRY(WriteInto(fs_, root, "etc/default/keyboard",
                       "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"" + layout + "\"\nXKBVARIANT=\"" + variant + "\"\nXKBOPTIONS=\"\"\n"));
  if (!PathExists(root + "/usr/share/zoneinfo/" + recipe.timezone))
    return Fail(FieldError("timezone", "unknown time zone '" + recipe.timezone + "'"));
  ::unlink((root + "/etc/localtime").c_str());
  if (::symlink(("/usr/share/zoneinfo/" + recipe.timezone).c_str(), (root + "/etc/localtime").c_str()) != 0)
    return Fail(Internal("cannot set the time zone"));
  HEARTH_TRY(WriteInto(fs_, root, "etc/timezone", recipe.timezone + "\n"));
  // Hardened sshd, as homelabs run it: keys only, no root login, the chosen port. A drop-in
  // comes first in Debian's sshd_config, so it wins over later edits.
  HEARTH_TRY(WriteInto(fs_, root, "etc/ssh/sshd_config.d/10-hearth.conf",
                       "Port " + std::to_string(recipe.ssh_port) +
                           "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"));
  HEARTH_TRY(WriteInto(fs_, root, "etc/cloud/cloud.cfg.d/90-hearth.cfg",
                       "datasource_list: [ NoCloud, ConfigDrive, None ]\n"
                       "ssh_genkeytypes: [ ed25519, ecdsa ]\n"
                       "disable_root: true\n"));
  HEARTH_TRY(Run({"chroot", root, "systemctl", "enable", "systemd-networkd.service", "serial-getty@ttyS0.service"},
                 log, std::chrono::minutes(2)));
  (void)Run({"chroot", root, "systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
             "e2scrub_reap.service"},
            nullptr, std::chrono::minutes(2));
  return Ok();
}

Status ImageBuilder::MakeBootableDisk(const ImageRecipe& recipe, const std::string& root, const std::string& raw,
                                      const std::string& work, const LogFn& log) {
  if (log) log("making a " + FormatSize(recipe.disk_size) + " bootable disk (MBR, ext4, extlinux)");
  std::string kernel, initrd;
  for (const auto& e : fs::directory_iterator(root + "/boot")) {
    std::string n = e.path().filename().string();
    if (StartsWith(n, "vmlinuz-")) kernel = n;
    if (StartsWith(n, "initrd.img-")) initrd = n;
  }
  if (kernel.empty() || initrd.empty()) return Fail(Internal("image build: no kernel or initrd in the root filesystem"));
  HEARTH_TRY(WriteInto(fs_, root, "boot/extlinux/extlinux.conf",
                       "DEFAULT debian\nTIMEOUT 1\nSERIAL 0 115200\nLABEL debian\n  LINUX /boot/" + kernel +
                           "\n  INITRD /boot/" + initrd +
                           "\n  APPEND root=LABEL=debroot rw console=tty0 console=ttyS0,115200\n"));
  {
    int fd = ::open(raw.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(recipe.disk_size)) != 0) {
      if (fd >= 0) ::close(fd);
      return Fail(Internal("cannot create " + raw));
    }
    ::close(fd);
  }
  HEARTH_TRY(Run({"sfdisk", "--quiet", raw}, log, std::chrono::minutes(1), "label: dos\n2048,,L,*\n"));
  uint64_t part_kib = (recipe.disk_size - kPartitionOffset) / kKiB;
  // extlinux cannot read ext4's 64bit feature.
  HEARTH_TRY(Run({"mkfs.ext4", "-q", "-F", "-L", "debroot", "-O", "^64bit", "-E",
                  "offset=" + std::to_string(kPartitionOffset), "-d", root, raw, std::to_string(part_kib) + "k"},
                 log, std::chrono::minutes(10)));
  // extlinux installs into a mounted filesystem: a loop device on the partition.
  ProcessOptions opt;
  auto loop = runner_.Run({"losetup", "--find", "--show", "-o", std::to_string(kPartitionOffset), "--sizelimit",
                           std::to_string(part_kib * kKiB), raw},
                          opt);
  if (!loop || loop->exit_code != 0) return Fail(Internal("image build: losetup failed"));
  std::string dev(Trim(loop->out));
  std::string mnt = work + "/mnt";
  HEARTH_TRY(MakeDirs(mnt));
  Status st = Run({"mount", dev, mnt}, log, std::chrono::minutes(1));
  if (st) {
    st = Run({"extlinux", "--install", mnt + "/boot/extlinux"}, log, std::chrono::minutes(1));
    (void)Run({"umount", mnt}, nullptr, std::chrono::minutes(1));
  }
  (void)Run({"losetup", "-d", dev}, nullptr, std::chrono::minutes(1));
  HEARTH_TRY(st);
  // The MBR boot code (the first 440 bytes; the partition table stays).
  HEARTH_ASSIGN_OR_RETURN(std::string mbr, ReadFile("/usr/lib/syslinux/mbr/mbr.bin"));
  int fd = ::open(raw.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && pwrite(fd, mbr.data(), std::min<size_t>(mbr.size(), 440), 0) == static_cast<ssize_t>(std::min<size_t>(mbr.size(), 440));
  if (fd >= 0) ::close(fd);
  if (!ok) return Fail(Internal("image build: cannot write the MBR"));
  return Ok();
}

std::vector<CachedImage> ImageBuilder::List() const {
  std::vector<CachedImage> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(cache_dir_, ec)) {
    std::string img = d.path().string() + "/image.qcow2";
    struct stat st;
    if (d.path().filename().string()[0] == '.' || ::stat(img.c_str(), &st) != 0) continue;
    out.push_back({d.path().filename().string(), img, static_cast<uint64_t>(st.st_size), st.st_mtime,
                   ReadFile(d.path().string() + "/recipe.txt").value_or("")});
  }
  return out;
}

}  // namespace hearth
