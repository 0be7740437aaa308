// The value parsers of the config, and the DSN redaction every log line goes through.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "src/config/config.h"

namespace pgfanout {
namespace {

using std::chrono::milliseconds;

TEST(RedactDsnTest, HidesBarePassword) {
  EXPECT_EQ(RedactDsn("host=db password=s3cret user=app"), "host=db password=******** user=app");
}

TEST(RedactDsnTest, HidesQuotedPasswordWithSpacesAndEscapedQuote) {
  EXPECT_EQ(RedactDsn(R"(host=db password='s3 cr\'et' user=app)"),
            "host=db password=******** user=app");
}

TEST(RedactDsnTest, HidesPasswordWithSpacesAroundEquals) {
  EXPECT_EQ(RedactDsn("host=db password = s3cret user=app"),
            "host=db password = ******** user=app");
  EXPECT_EQ(RedactDsn("host=db password = 's3 cret'"), "host=db password = ********");
}

TEST(RedactDsnTest, HidesPasswordInUri) {
  EXPECT_EQ(RedactDsn("postgresql://app:s3cret@db:5432/x?sslmode=require"),
            "postgresql://app:********@db:5432/x?sslmode=require");
  EXPECT_EQ(RedactDsn("postgres://app:s3%40cret@db/x"), "postgres://app:********@db/x");
}

TEST(RedactDsnTest, HidesPasswordInUriQuery) {
  EXPECT_EQ(RedactDsn("postgresql://app@db/x?password=s3cret"),
            "postgresql://app@db/x?password=********");
}

// libpq decodes a URI's query keys: `%70assword` is `password` to it. The regex saw no
// password there; what libpq reads decides.
TEST(RedactDsnTest, HidesAPasswordBehindAPercentEncodedUriKey) {
  const std::string dsn = "postgresql://u@h/db?%70assword=s3cret&sslmode=require";
  const std::string shown = RedactDsn(dsn);
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  EXPECT_EQ(shown, "user=u password=******** dbname=db host=h sslmode=require");
  EXPECT_EQ(DsnPassword(dsn), std::optional<std::string>("s3cret"));
  EXPECT_EQ(RedactDsn("postgresql://u@h/db?pass%77ord=x").find("=x"), std::string::npos);
  EXPECT_EQ(RedactDsn("host=db dbname='unclosed"),
            "<a connection string libpq cannot read, not shown>");
}

TEST(RedactDsnTest, LeavesPasswordFreeDsnsUnchanged) {
  for (const char* dsn :
       {"host=127.0.0.1 port=5432 dbname=app user=pgfanout", "passfile=/etc/pgpass host=db",
        "postgresql://app@db:5432/x?sslmode=require", "postgresql://db:5432/x", ""}) {
    EXPECT_EQ(RedactDsn(dsn), dsn);
  }
}

TEST(ParseSizeTest, ReadsPostgresStyleUnits) {
  EXPECT_EQ(ParseSize("0"), 0u);
  EXPECT_EQ(ParseSize("4096"), 4096u);
  EXPECT_EQ(ParseSize("64kB"), 64u << 10);
  EXPECT_EQ(ParseSize("512MB"), 512u << 20);
  EXPECT_EQ(ParseSize("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(ParseSize("2TB"), uint64_t{2} << 40);
  for (const char* bad : {"", "MB", "1.5GB", "1 GB", "1gb", "-1", "99999999999TB"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseDurationTest, AcceptsEachUnit) {
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("10s"), milliseconds(10'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("24h"), milliseconds(86'400'000));
  EXPECT_EQ(ParseDuration("0s"), milliseconds(0));
}

TEST(ParseDurationTest, RejectsAnythingElse) {
  for (const char* text : {"", "10", "ms", "10 s", " 10s", "-5s", "1.5s", "10sec", "5M", "1d",
                           "1h30m", "9999999999999h"}) {
    EXPECT_EQ(ParseDuration(text), std::nullopt) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace pgfanout
