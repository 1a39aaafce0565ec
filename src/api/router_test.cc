#include "api/router.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

Router MakeRouter() {
  Router r;
  auto ok = [](ApiContext&) -> Result<ApiReply> { return ApiReply{}; };
  r.Add({"GET", "/nodes/{node}/qemu/{vmid}/config", {PString("node"), PInt("vmid", 100), PBool("current")}, false, "", "", true, true, false, ok, ""});
  r.Add({"PUT", "/nodes/{node}/qemu/{vmid}/config", {PString("node"), PInt("vmid", 100), PString("delete")}, true, "", "", true, true, false, ok, ""});
  r.Add({"GET", "/nodes/{node}/storage/{storage}/content/{volume*}", {PString("node"), PString("storage"), PString("volume")}, false, "", "", true, true, false, ok, ""});
  return r;
}

TEST(Router, MatchesPathsAndGreedyTail) {
  Router r = MakeRouter();
  auto m = r.Match("GET", "/nodes/n1/qemu/100/config");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->second.at("vmid"), "100");
  auto v = r.Match("GET", "/nodes/n1/storage/local/content/local:100/vm-100-disk-0.qcow2");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->second.at("volume"), "local:100/vm-100-disk-0.qcow2");
  EXPECT_TRUE(r.Match("GET", "//nodes/n1/qemu/100/config/"));  // empty segments are ignored
  EXPECT_FALSE(r.Match("POST", "/nodes/n1/qemu/100/config"));
  EXPECT_FALSE(r.Match("GET", "/nodes/n1/qemu/100"));
}

TEST(Router, ValidationNamesEveryBadField) {
  Router r = MakeRouter();
  auto m = r.Match("GET", "/nodes/n1/qemu/99/config");
  Params p;
  p.Set("current", "yes");
  p.Set("bogus", "1");
  auto st = ValidateParams(*m->first, m->second, p);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().fields.at("vmid"), "value must have a minimum value of 100");
  EXPECT_EQ(st.error().fields.at("current"), "type check ('boolean') failed - got 'yes'");
  EXPECT_NE(st.error().fields.at("bogus").find("not defined in schema"), std::string::npos);
}

TEST(Router, ConflictingPathParameter) {
  Router r = MakeRouter();
  auto m = r.Match("GET", "/nodes/n1/qemu/100/config");
  Params p;
  p.Set("vmid", "101");
  auto st = ValidateParams(*m->first, m->second, p);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().fields.at("vmid"), "duplicate parameter (already defined in URI) with conflicting values!");
  Params same;
  same.Set("vmid", "100");
  EXPECT_TRUE(ValidateParams(*m->first, m->second, same));
}

TEST(Router, VmConfigKeysAreValidatedAndCanonicalised) {
  Router r = MakeRouter();
  auto m = r.Match("PUT", "/nodes/n1/qemu/100/config");
  Params p;
  p.Set("tags", "B,a");
  p.Set("cores", "2");
  ASSERT_TRUE(ValidateParams(*m->first, m->second, p));
  EXPECT_EQ(p.Get("tags"), "a;b");
  Params bad;
  bad.Set("cores", "many");
  bad.Set("net0", "virtio,bridge=a b");
  auto st = ValidateParams(*m->first, m->second, bad);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().fields.count("cores"), 1u);
  EXPECT_EQ(st.error().fields.count("net0"), 1u);
}

}  // namespace
TEST(RouterDeathTest, TheSameRouteTwiceStopsAtStart) {
  Router r;
  auto ok = [](ApiContext&) -> Result<ApiReply> { return ApiReply{}; };
  r.Add({"GET", "/nodes/{node}/replication", {}, false, "", "", true, true, false, ok, ""});
  r.Add({"POST", "/nodes/{node}/replication", {}, false, "", "", true, true, false, ok, ""});  // another method: fine
  EXPECT_DEATH(r.Add({"GET", "/nodes/{node}/replication", {}, false, "", "", true, true, false, ok, ""}),
               "route registered twice: GET /nodes/\\{node\\}/replication");
}

}  // namespace hearth
