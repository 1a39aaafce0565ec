#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "access/access_service.h"
#include "access/passwords.h"
#include "access/tickets.h"
#include "access/userid.h"
#include "core/strings.h"
#include "core/testing/temp_dir.h"
#include "state/sqlite/sqlite_store.h"
#include "sys/testing/fake_clock.h"

namespace hearth {
namespace {

class FakePam : public PamAuthenticator {
 public:
  bool Authenticate(const std::string& user, const std::string& password) override {
    return user == "root" && password == "rootpw";
  }
};

TEST(Passwords, HashAndVerify) {
  auto h = HashPassword("s3cret");
  ASSERT_TRUE(h);
  EXPECT_TRUE(StartsWith(*h, "$y$"));
  EXPECT_TRUE(VerifyPassword("s3cret", *h));
  EXPECT_FALSE(VerifyPassword("s3cret!", *h));
  EXPECT_FALSE(VerifyPassword("s3cret", ""));
  EXPECT_FALSE(VerifyPassword("s3cret", "garbage"));
}

class TicketTest : public ::testing::Test {
 protected:
  void SetUp() override { ta_ = std::move(*TicketAuthority::Create(*TicketAuthority::GenerateKeyPem(), std::string(32, 'k'))); }
  std::unique_ptr<TicketAuthority> ta_;
};

TEST_F(TicketTest, TicketFormatAndLifetime) {
  std::string t = ta_->MakeTicket("root@pam", 0x6720A1B2);
  EXPECT_TRUE(StartsWith(t, "PVE:root@pam:6720A1B2::"));
  EXPECT_EQ(ta_->VerifyTicket(t, 0x6720A1B2 + 7199)->userid, "root@pam");
  EXPECT_FALSE(ta_->VerifyTicket(t, 0x6720A1B2 + 7200));
  EXPECT_FALSE(ta_->VerifyTicket(t, 0x6720A1B2 - 300));
  EXPECT_TRUE(ta_->VerifyTicket(t, 0x6720A1B2 - 299));
}

TEST_F(TicketTest, TamperedTicketsAreRejected) {
  std::string t = ta_->MakeTicket("alice@pve", 1700000000);
  std::string forged = t;
  forged.replace(4, 9, "admin@pve");
  EXPECT_FALSE(ta_->VerifyTicket(forged, 1700000001));
  auto other = std::move(*TicketAuthority::Create(*TicketAuthority::GenerateKeyPem(), std::string(32, 'k')));
  EXPECT_FALSE(other->VerifyTicket(t, 1700000001));  // another key
  EXPECT_FALSE(ta_->VerifyTicket("PVE:x", 1));
  EXPECT_FALSE(ta_->VerifyTicket("", 1));
}

// A user named "%61dmin@pve" must stay that user: the ticket's id round-trips exactly.
TEST_F(TicketTest, PercentInUserIdRoundTrips) {
  for (std::string id : {"%61dmin@pve", "a%3Ab@pve", "x%25y@pam", "%@pve", "a@b@pve", "x!y@pve"}) {
    std::string t = ta_->MakeTicket(id, 1700000000);
    auto v = ta_->VerifyTicket(t, 1700000001);
    ASSERT_TRUE(v) << id;
    EXPECT_EQ(v->userid, id);
    EXPECT_EQ(v->issued, 1700000000);
  }
}

TEST(UserIdTest, ProxmoxGrammar) {
  auto u = ParseUserId("alice@pve");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->name, "alice");
  EXPECT_EQ(u->realm, "pve");
  u = ParseUserId("a@b@pve");  // the name may hold '@'; the realm is after the last one
  ASSERT_TRUE(u);
  EXPECT_EQ(u->name, "a@b");
  for (const char* bad : {"", "a@", "@pve", "ab", "a b@pve", "a:b@pve", "a/b@pve", "a@p", "a@1pve", "a\tb@pve",
                          "alice@pve!tok"})
    EXPECT_FALSE(ParseUserId(bad)) << bad;
  EXPECT_FALSE(ParseUserId(std::string(61, 'a') + "@pve"));  // 65 characters
  EXPECT_TRUE(ParseUserId(std::string(60, 'a') + "@pve"));   // 64
  auto t = ParseTokenId("x!y@pve!ci");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->UserId(), "x!y@pve");
  EXPECT_EQ(t->token, "ci");
  EXPECT_FALSE(ParseTokenId("alice@pve"));
  EXPECT_FALSE(ParseTokenId("alice@pve!"));
  EXPECT_FALSE(ParseTokenId("alice@pve!1x"));
  EXPECT_EQ(ParseAuthId("a!b@pve")->token, "");  // a user whose name holds '!'
  EXPECT_EQ(ParseAuthId("a@pve!bb")->token, "bb");
  EXPECT_FALSE(ParseAuthId("a@pve!b"));  // token names have two characters at least
}

TEST_F(TicketTest, CsrfTokenBoundToUserAndTime) {
  std::string c = ta_->MakeCsrfToken("root@pam", 1700000000);
  EXPECT_EQ(c.size(), 8u + 1 + 43);
  EXPECT_TRUE(ta_->VerifyCsrfToken(c, "root@pam", 1700000100));
  EXPECT_FALSE(ta_->VerifyCsrfToken(c, "alice@pve", 1700000100));
  EXPECT_FALSE(ta_->VerifyCsrfToken(c, "root@pam", 1700000000 + 7200));
  EXPECT_FALSE(ta_->VerifyCsrfToken("zzzzzzzz:abc", "root@pam", 1700000000));
}

class AccessServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*SqliteStore::Open(dir_.Sub("db")));
    ta_ = std::move(*TicketAuthority::Create(*TicketAuthority::GenerateKeyPem(), std::string(32, 'k')));
    access_ = std::make_unique<AccessService>(*store_, clock_, *ta_, pam_);
  }
  FakeClock clock_;
  FakePam pam_;
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TicketAuthority> ta_;
  std::unique_ptr<AccessService> access_;
};

TEST_F(AccessServiceTest, PveAndPamLogins) {
  ASSERT_TRUE(access_->AddUser("alice@pve", "pw", false));
  auto alice = access_->Login("alice@pve", "pw", "");
  ASSERT_TRUE(alice);
  EXPECT_FALSE(alice->identity.admin);
  EXPECT_EQ(access_->Login("alice@pve", "wrong", "").error().message, "authentication failure");
  EXPECT_EQ(access_->Login("nobody@pve", "pw", "").error().message, "authentication failure");
  auto root = access_->Login("root", "rootpw", "pam");
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->identity.admin);
  // Renewal with the ticket as password.
  EXPECT_TRUE(access_->Login("alice@pve", alice->ticket, ""));
  EXPECT_FALSE(access_->Login("bob@pve", alice->ticket, ""));
}

TEST_F(AccessServiceTest, TokensCarryTheUsersRights) {
  ASSERT_TRUE(access_->AddUser("ops@pve", "pw", true));
  auto secret = access_->AddToken("ops@pve!ci", "");
  ASSERT_TRUE(secret);
  auto id = access_->FromToken("ops@pve!ci", *secret);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->AuthId(), "ops@pve!ci");
  EXPECT_TRUE(id->admin);
  EXPECT_FALSE(access_->FromToken("ops@pve!ci", "wrong"));
  EXPECT_FALSE(access_->FromToken("ops@pve!other", *secret));
  EXPECT_FALSE(access_->AddToken("ghost@pve!ci", ""));
  EXPECT_FALSE(access_->AddToken("ops@pve!9bad", ""));
}

TEST_F(AccessServiceTest, NonAdminsOnlyAudit) {
  Identity reader{"r@pve", "", false, true};
  EXPECT_TRUE(access_->Allowed(reader, "/vms/100", "VM.Audit"));
  EXPECT_FALSE(access_->Allowed(reader, "/vms/100", "VM.PowerMgmt"));
  Identity admin{"a@pve", "", true, true};
  EXPECT_TRUE(access_->Allowed(admin, "/vms/100", "VM.PowerMgmt"));
  EXPECT_EQ(access_->Permissions(admin).at("/").count("VM.Allocate"), 1u);
}

TEST_F(AccessServiceTest, DisabledUserCannotLogIn) {
  ASSERT_TRUE(access_->AddUser("x@pve", "pw", false));
  auto u = *store_->GetUser("x@pve");
  u->enabled = false;
  ASSERT_TRUE(store_->PutUser(*u));
  EXPECT_FALSE(access_->Login("x@pve", "pw", ""));
}

}  // namespace
}  // namespace hearth
