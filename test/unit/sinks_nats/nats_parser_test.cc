// The NATS client protocol parser: what a server sends, whole and in pieces, and the
// malformed lines it must refuse (a client that guessed would misframe every message
// after).

#include "src/sinks/nats/nats_parser.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgfanout::nats {
namespace {

// Every op in `bytes` (fed at once); fails the test on a parse error.
std::vector<ServerOp> ParseAll(const std::string& bytes, size_t chunk = 0) {
  NatsParser p;
  std::vector<ServerOp> out;
  auto drain = [&] {
    while (true) {
      auto op = p.Next();
      EXPECT_TRUE(op.has_value()) << (op ? "" : op.error().message);
      if (!op || !op.value()) return;
      out.push_back(std::move(*op.value()));
    }
  };
  if (chunk == 0) {
    p.Feed(bytes);
    drain();
  } else {
    for (size_t i = 0; i < bytes.size(); i += chunk) {
      p.Feed(std::string_view(bytes).substr(i, chunk));
      drain();
    }
  }
  EXPECT_EQ(p.buffered(), 0u);
  return out;
}

// The error the parser gives for `bytes`, or "" when it gives none.
std::string ErrorOf(const std::string& bytes, size_t max_payload = 1 << 20) {
  NatsParser p(max_payload);
  p.Feed(bytes);
  while (true) {
    auto op = p.Next();
    if (!op) {
      EXPECT_EQ(op.error().kind, ErrorKind::kProtocol);
      return op.error().message;
    }
    if (!op.value()) return "";
  }
}

// An HMSG with its byte counts computed.
std::string Hmsg(const std::string& subject, const std::string& headers, const std::string& body) {
  return fmt::format("HMSG {} 1 {} {}\r\n{}{}\r\n", subject, headers.size(),
                     headers.size() + body.size(), headers, body);
}

const std::string kInfo =
    "INFO {\"server_id\":\"N1\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576} "
    "\r\n";

TEST(NatsParserTest, ReadsInfoWithItsTrailingBlank) {
  auto ops = ParseAll(kInfo);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].kind, ServerOpKind::kInfo);
  EXPECT_EQ(
      ops[0].text,
      "{\"server_id\":\"N1\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576}");
}

TEST(NatsParserTest, ReadsMsgWithAndWithoutReplyAndRunsOfBlanks) {
  // nats-server writes two blanks where the reply subject is absent.
  auto ops = ParseAll(
      "MSG _INBOX.abc.2 1  24\r\n{\"stream\":\"S1\", \"seq\":1}\r\n"
      "MSG orders.new 7 reply.to 5\r\nhello\r\n");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, ServerOpKind::kMsg);
  EXPECT_EQ(ops[0].message.subject, "_INBOX.abc.2");
  EXPECT_EQ(ops[0].message.sid, "1");
  EXPECT_EQ(ops[0].message.reply, "");
  EXPECT_EQ(ops[0].message.payload, "{\"stream\":\"S1\", \"seq\":1}");
  EXPECT_EQ(ops[1].message.subject, "orders.new");
  EXPECT_EQ(ops[1].message.sid, "7");
  EXPECT_EQ(ops[1].message.reply, "reply.to");
  EXPECT_EQ(ops[1].message.payload, "hello");
}

TEST(NatsParserTest, PayloadIsCountedNotScannedForLineEnds) {
  auto ops = ParseAll("MSG a 1 9\r\nab\r\nMSG x\r\n");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].message.payload, "ab\r\nMSG x");
  ASSERT_EQ(ParseAll("MSG a 1 0\r\n\r\n").at(0).message.payload, "");
}

TEST(NatsParserTest, ReadsHmsgHeadersAndStatus) {
  const std::string headers = "NATS/1.0\r\nNats-Msg-Id: 0/16B3748#12\r\nX-Two:  spaced \r\n\r\n";
  const std::string body = "{\"a\":1}";
  auto ops = ParseAll(fmt::format("HMSG s.t 3 r {} {}\r\n{}{}\r\n", headers.size(),
                                  headers.size() + body.size(), headers, body));
  ASSERT_EQ(ops.size(), 1u);
  const auto& m = ops[0].message;
  EXPECT_EQ(m.status, 0);
  EXPECT_EQ(m.payload, body);
  ASSERT_NE(m.Header("nats-msg-id"), nullptr);  // names compare case-insensitively
  EXPECT_EQ(*m.Header("Nats-Msg-Id"), "0/16B3748#12");
  EXPECT_EQ(*m.Header("X-Two"), "spaced");
  EXPECT_EQ(m.Header("Missing"), nullptr);

  // The no-responders status JetStream publishers see while a stream has no leader.
  auto status = ParseAll("HMSG _INBOX.x.3 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].message.status, 503);
  EXPECT_EQ(status[0].message.payload, "");
  auto described = ParseAll(Hmsg("i", "NATS/1.0 408 Request Timeout\r\n\r\n", ""));
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0].message.status, 408);
  EXPECT_EQ(described[0].message.description, "Request Timeout");
}

TEST(NatsParserTest, ReadsPingPongOkAndErrCaseInsensitively) {
  auto ops = ParseAll("PING\r\nPONG\r\n+OK\r\nping\r\n-ERR 'Authorization Violation'\r\n");
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(ops[0].kind, ServerOpKind::kPing);
  EXPECT_EQ(ops[1].kind, ServerOpKind::kPong);
  EXPECT_EQ(ops[2].kind, ServerOpKind::kOk);
  EXPECT_EQ(ops[3].kind, ServerOpKind::kPing);
  EXPECT_EQ(ops[4].kind, ServerOpKind::kErr);
  EXPECT_EQ(ops[4].text, "Authorization Violation");
}

TEST(NatsParserTest, AnySplitOfTheBytesGivesTheSameOps) {
  const std::string headers = "NATS/1.0\r\nNats-Msg-Id: 1/2#3\r\n\r\n";
  const std::string stream =
      kInfo + "PING\r\nMSG a.b 1 r 3\r\nxyz\r\n" +
      fmt::format("HMSG c 1 {} {}\r\n{}body\r\n", headers.size(), headers.size() + 4, headers) +
      "-ERR 'Stale Connection'\r\n";
  const auto whole = ParseAll(stream);
  ASSERT_EQ(whole.size(), 5u);
  for (size_t chunk : {1, 2, 3, 7, 16}) {
    const auto split = ParseAll(stream, chunk);
    ASSERT_EQ(split.size(), whole.size()) << "chunk " << chunk;
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(split[i].kind, whole[i].kind);
      EXPECT_EQ(split[i].text, whole[i].text);
      EXPECT_EQ(split[i].message.subject, whole[i].message.subject);
      EXPECT_EQ(split[i].message.payload, whole[i].message.payload);
      EXPECT_EQ(split[i].message.headers, whole[i].message.headers);
    }
  }
}

TEST(NatsParserTest, WaitsForTheWholeMessage) {
  NatsParser p;
  p.Feed("MSG a 1 5\r\nhel");
  auto op = p.Next();
  ASSERT_TRUE(op);
  EXPECT_FALSE(op.value());
  p.Feed("lo\r");
  op = p.Next();
  ASSERT_TRUE(op);
  EXPECT_FALSE(op.value());
  p.Feed("\n");
  op = p.Next();
  ASSERT_TRUE(op && op.value());
  EXPECT_EQ(op.value()->message.payload, "hello");
}

TEST(NatsParserTest, RefusesMalformedLinesNamingThem) {
  EXPECT_NE(ErrorOf("FOO bar\r\n").find("unknown"), std::string::npos);
  EXPECT_NE(ErrorOf("FOO bar\r\n").find("'FOO bar'"), std::string::npos);
  EXPECT_NE(ErrorOf("PING\n").find("CRLF"), std::string::npos);
  EXPECT_NE(ErrorOf("PING now\r\n"), "");
  EXPECT_NE(ErrorOf("MSG a 1\r\n"), "");                       // no size
  EXPECT_NE(ErrorOf("MSG a 1 r s 3\r\nabc\r\n"), "");          // one field too many
  EXPECT_NE(ErrorOf("MSG a 1 x3\r\nabc\r\n"), "");             // size not a number
  EXPECT_NE(ErrorOf("MSG a 1 -3\r\nabc\r\n"), "");             // signed
  EXPECT_NE(ErrorOf("MSG a 1 +3\r\nabc\r\n"), "");             // signed
  EXPECT_NE(ErrorOf("MSG a 1 3\r\nabcXY"), "");                // payload not ended by CRLF
  EXPECT_NE(ErrorOf("HMSG a 1 20 10\r\n0123456789\r\n"), "");  // headers past the total
  EXPECT_NE(ErrorOf("HMSG a 1 0 2\r\nab\r\n"), "");            // no header block
  EXPECT_NE(ErrorOf("HMSG a 1 12 12\r\nHTTP/1.1\r\n\r\n\r\n").find("NATS/1.0"), std::string::npos);
  EXPECT_NE(ErrorOf("HMSG a 1 17 17\r\nNATS/1.0\r\nX-A\r\n\r\n\r\n").find("no name"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Hmsg("a", "NATS/1.0 5O3\r\n\r\n", "")), "");       // letter O
  EXPECT_NE(ErrorOf(Hmsg("a", "NATS/1.0\r\nA: 1\r\n\r\nX", "")), "");  // past the end
  EXPECT_NE(ErrorOf("INFO\r\n"), "");
  EXPECT_NE(ErrorOf("INFO [1]\r\n"), "");
  EXPECT_NE(ErrorOf("MSG a 1 100\r\n", 10).find("over the 10"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(NatsParser::kMaxControlLine + 10, 'A')).find("without CRLF"),
            std::string::npos);
}

TEST(NatsParserTest, ControlCharactersInTheQuotedLineAreEscaped) {
  EXPECT_NE(ErrorOf("BAD\x01\x1b[2J\r\n").find("\\x01\\x1b"), std::string::npos);
}

TEST(NatsParserTest, StaysFailedAfterAnError) {
  NatsParser p;
  p.Feed("BOGUS\r\nPING\r\n");
  EXPECT_FALSE(p.Next());
  auto again = p.Next();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kProtocol);
}

TEST(NatsParserTest, BufferDoesNotGrowWithTheConnection) {
  NatsParser p;
  const std::string one = "MSG _INBOX.x.1 1  24\r\n{\"stream\":\"S1\", \"seq\":1}\r\n";
  for (int i = 0; i < 100000; ++i) {
    p.Feed(one);
    auto op = p.Next();
    ASSERT_TRUE(op && op.value());
  }
  EXPECT_EQ(p.buffered(), 0u);
}

}  // namespace
}  // namespace pgfanout::nats
