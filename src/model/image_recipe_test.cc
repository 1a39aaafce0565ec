#include "model/image_recipe.h"

#include <gtest/gtest.h>

#include "core/units.h"

namespace hearth {

TEST(ImageRecipe, NormalisesAndHashesStably) {
  auto a = MakeImageRecipe("bookworm", "htop, curl;htop", "en_US.UTF-8", "de", "Europe/Berlin", 2222, 4 * kGiB);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->packages, (std::vector<std::string>{"curl", "htop"}));
  auto b = MakeImageRecipe("bookworm", "curl htop", "en_US.UTF-8", "de", "Europe/Berlin", 2222, 4 * kGiB);
  EXPECT_EQ(a->Hash(), b->Hash());
  EXPECT_EQ(a->Hash().size(), 16u);
  auto c = MakeImageRecipe("bookworm", "curl htop", "en_US.UTF-8", "de", "Europe/Berlin", 22, 4 * kGiB);
  EXPECT_NE(a->Hash(), c->Hash());
}

TEST(ImageRecipe, RejectsHostileValuesNamingTheField) {
  auto bad = [](const ImageRecipe* unused, auto result, const char* field) {
    (void)unused;
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().fields.count(field), 1u) << field;
  };
  bad(nullptr, MakeImageRecipe("sid", "", "C.UTF-8", "us", "Etc/UTC", 22, 2 * kGiB), "release");
  bad(nullptr, MakeImageRecipe("bookworm", "curl; rm -rf /", "C.UTF-8", "us", "Etc/UTC", 22, 2 * kGiB), "packages");
  bad(nullptr, MakeImageRecipe("bookworm", "--allow-unauthenticated", "C.UTF-8", "us", "Etc/UTC", 22, 2 * kGiB), "packages");
  bad(nullptr, MakeImageRecipe("bookworm", "", "C.UTF-8\nX", "us", "Etc/UTC", 22, 2 * kGiB), "locale");
  bad(nullptr, MakeImageRecipe("bookworm", "", "C.UTF-8", "us$(id)", "Etc/UTC", 22, 2 * kGiB), "keyboard");
  bad(nullptr, MakeImageRecipe("bookworm", "", "C.UTF-8", "us", "../../etc/shadow", 22, 2 * kGiB), "timezone");
  bad(nullptr, MakeImageRecipe("bookworm", "", "C.UTF-8", "us", "Etc/UTC", 0, 2 * kGiB), "ssh-port");
  bad(nullptr, MakeImageRecipe("bookworm", "", "C.UTF-8", "us", "Etc/UTC", 22, kMiB), "disk-size");
}

}  // namespace hearth
