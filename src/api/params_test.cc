#include "api/params.h"

#include <gtest/gtest.h>

namespace hearth {

TEST(Params, FormDecodingFollowsPve) {
  Params p;
  ASSERT_TRUE(DecodeUrlEncoded("a=1&b=x+y;c=%2C&empty=&bare&command=ls&command=-l&_dc=123", p));
  EXPECT_EQ(p.Get("a"), "1");
  EXPECT_EQ(p.Get("b"), "x y");
  EXPECT_EQ(p.Get("c"), ",");
  EXPECT_FALSE(p.Has("empty"));  // empty value = absent
  EXPECT_FALSE(p.Has("bare"));
  EXPECT_FALSE(p.Has("_dc"));
  EXPECT_EQ(p.GetAll("command"), (std::vector<std::string>{"ls", "-l"}));
  EXPECT_TRUE(p.IsRepeated("command"));
}

TEST(Params, RejectsBrokenEscapesAndNul) {
  Params p;
  EXPECT_FALSE(DecodeUrlEncoded("a=%zz", p));
  EXPECT_FALSE(DecodeUrlEncoded("a=%00", p));
  EXPECT_FALSE(DecodeUrlEncoded("a=%ff", p));
}

TEST(Params, BodyWithoutContentTypeIsForm) {
  HttpRequest r;
  r.method = "POST";
  r.body = "username=root%40pam&password=secret";
  auto p = ExtractParams(r, "");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->Get("username"), "root@pam");
}

TEST(Params, JsonBodyAndQueryWins) {
  HttpRequest r;
  r.method = "PUT";
  r.headers = {{"content-type", "application/json"}};
  r.body = R"({"cores": 2, "onboot": true, "name": "a", "list": ["x","y"], "nothing": null})";
  auto p = ExtractParams(r, "name=b");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->Get("cores"), "2");
  EXPECT_EQ(p->Get("onboot"), "1");
  EXPECT_EQ(p->Get("name"), "b");
  EXPECT_EQ(p->GetAll("list").size(), 2u);
  EXPECT_FALSE(p->Has("nothing"));
}

TEST(Params, BodyOnGetIsRejected) {
  HttpRequest r;
  r.method = "DELETE";
  r.body = "x=1";
  auto p = ExtractParams(r, "");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kNotImplemented);
  EXPECT_EQ(p.error().message, "Unexpected content for method 'DELETE'");
}

TEST(Params, TargetPathIsDecodedButPlusKept) {
  auto t = SplitRequestTarget("/api2/json/nodes/n1/tasks/UPID%3An1%3A1%3Aroot%40pam%21tok%3A?x=1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/api2/json/nodes/n1/tasks/UPID:n1:1:root@pam!tok:");
  EXPECT_EQ(t->query, "x=1");
  EXPECT_EQ(SplitRequestTarget("/a+b")->path, "/a+b");
}

}  // namespace hearth
