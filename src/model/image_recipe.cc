#include "model/image_recipe.h"

#include <openssl/sha.h>

#include <algorithm>
#include <set>

#include "core/pattern.h"
#include "core/strings.h"
#include "core/units.h"

namespace hearth {

// Bump when the build procedure changes, so old cache entries are not reused.
static constexpr int kBuilderVersion = 1;

const std::vector<std::string>& BaseImagePackages() {
  static const std::vector<std::string> pkgs = {
      "usr-is-merged", "systemd", "systemd-sysv", "udev", "dbus", "cloud-init", "cloud-guest-utils",
      "qemu-guest-agent", "openssh-server", "sudo", "iproute2", "netbase", "e2fsprogs", "zstd",
      "initramfs-tools", "linux-image-cloud-amd64", "tzdata", "locales"};
  return pkgs;
}

std::string ImageRecipe::Canonical() const {
  return "builder=" + std::to_string(kBuilderVersion) + "\nrelease=" + release + "\npackages=" + Join(packages, ",") +
         "\nlocale=" + locale + "\nkeyboard=" + keyboard + "\ntimezone=" + timezone +
         "\nssh_port=" + std::to_string(ssh_port) + "\ndisk_size=" + std::to_string(disk_size) + "\n";
}

std::string ImageRecipe::Hash() const {
  std::string text = Canonical();
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof md)).substr(0, 16);
}

Result<ImageRecipe> MakeImageRecipe(const std::string& release, const std::string& packages, const std::string& locale,
                                    const std::string& keyboard, const std::string& timezone, int ssh_port,
                                    uint64_t disk_size) {
  ImageRecipe r;
  if (release != "bookworm") return Fail(FieldError("release", "only 'bookworm' (Debian 12) images can be built"));
  r.release = release;
  static const Pattern pkg("[a-z0-9][a-z0-9+.\\-]{1,63}");
  std::set<std::string> set;
  for (const auto& p : SplitAny(packages, ", ;")) {
    if (!pkg.FullMatch(p)) return Fail(FieldError("packages", "invalid package name '" + p + "'"));
    set.insert(p);
  }
  r.packages.assign(set.begin(), set.end());
  static const Pattern loc("[A-Za-z]{1,8}(_[A-Z]{2})?\\.(UTF-8|utf8)");
  if (!loc.FullMatch(locale)) return Fail(FieldError("locale", "invalid locale '" + locale + "' (e.g. en_US.UTF-8)"));
  r.locale = locale;
  static const Pattern kb("[a-z]{2,3}(-[a-z]{2,8})?");
  if (!kb.FullMatch(keyboard)) return Fail(FieldError("keyboard", "invalid keyboard layout '" + keyboard + "'"));
  r.keyboard = keyboard;
  static const Pattern tz("[A-Za-z]+(/[A-Za-z0-9_+\\-]+){0,2}");
  if (!tz.FullMatch(timezone) || timezone.find("..") != std::string::npos)
    return Fail(FieldError("timezone", "invalid time zone '" + timezone + "' (e.g. Europe/Berlin)"));
  r.timezone = timezone;
  if (ssh_port < 1 || ssh_port > 65535) return Fail(FieldError("ssh-port", "port must be 1-65535"));
  r.ssh_port = ssh_port;
  if (disk_size < kGiB || disk_size > 64 * kGiB) return Fail(FieldError("disk-size", "disk size must be 1G-64G"));
  r.disk_size = disk_size;
  return r;
}

}  // namespace hearth
