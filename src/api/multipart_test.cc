#include "api/multipart.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace hearth {

TEST(Multipart, ParsesFieldsAndFileRange) {
  std::string path = std::filesystem::temp_directory_path() / ("mp-" + std::to_string(getpid()));
  std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\niso\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"tiny.iso\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\nBINARY\r\n--XY\r\nDATA\r\n--XyZ--\r\n";
  std::ofstream(path, std::ios::binary) << body;
  auto form = ParseMultipartFile(path, "multipart/form-data; boundary=XyZ");
  ASSERT_TRUE(form) << form.error().message;
  EXPECT_EQ(form->fields.at("content"), "iso");
  ASSERT_EQ(form->files.size(), 1u);
  EXPECT_EQ(form->files[0].filename, "tiny.iso");
  EXPECT_EQ(body.substr(form->files[0].offset, form->files[0].size), "BINARY\r\n--XY\r\nDATA");
  std::string copy = path + ".copy";
  ASSERT_TRUE(CopyFileRange(path, form->files[0].offset, form->files[0].size, copy));
  std::ifstream in(copy, std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, "BINARY\r\n--XY\r\nDATA");
  std::filesystem::remove(path);
  std::filesystem::remove(copy);
}

TEST(Multipart, RejectsTruncatedBodies) {
  std::string path = std::filesystem::temp_directory_path() / ("mp2-" + std::to_string(getpid()));
  std::ofstream(path, std::ios::binary) << "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever ends";
  EXPECT_FALSE(ParseMultipartFile(path, "multipart/form-data; boundary=B"));
  EXPECT_FALSE(ParseMultipartFile(path, "application/json"));
  std::filesystem::remove(path);
}

}  // namespace hearth
