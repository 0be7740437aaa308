// decoders/wal2json/document.h and pg_types.h: one document's shape, strictly; value text
// forms; commit timestamps; type modifiers read back from format_type's text.

#include <gtest/gtest.h>

#include <string>

#include "decoders/wal2json/document.h"
#include "decoders/wal2json/pg_types.h"

namespace pgfanout::wal2json {
namespace {

std::string ParseError(std::string_view text) {
  auto doc = ParseDocument(text);
  if (doc) {
    ADD_FAILURE() << "accepted: " << text;
    return "";
  }
  EXPECT_EQ(doc.error().kind, ErrorKind::kDecode);
  return doc.error().message;
}

Column OneValue(const std::string& value_json, uint32_t oid, const std::string& type = "") {
  std::string text = R"({"action":"I","columns":[{"name":"c","type":")" + type + R"(","typeoid":)" +
                     std::to_string(oid) + R"(,"value":)" + value_json + "}]}";
  auto doc = ParseDocument(text);
  EXPECT_TRUE(doc) << (doc ? "" : doc.error().message);
  if (!doc || !doc.value().columns || doc.value().columns->size() != 1) return Column{};
  return doc.value().columns->front();
}

TEST(Wal2jsonDocumentTest, ReadsEveryFieldOfABeginDocument) {
  auto doc =
      ParseDocument(R"({"action":"B","xid":4294967295,"timestamp":"2000-01-01 00:00:01.5+00",)"
                    R"("lsn":"0/15266C0","nextlsn":"1/0"})");
  ASSERT_TRUE(doc) << doc.error().message;
  EXPECT_EQ(doc.value().action, Action::kBegin);
  EXPECT_EQ(doc.value().xid->value, 4294967295u);
  EXPECT_EQ(doc.value().commit_time_us, 1'500'000);
  EXPECT_EQ(doc.value().lsn, Lsn(0x15266C0));
  EXPECT_EQ(doc.value().next_lsn, Lsn(uint64_t{1} << 32));
}

TEST(Wal2jsonDocumentTest, ValuesTakePgoutputsTextForm) {
  EXPECT_EQ(OneValue("true", 16).value.text, "t");
  EXPECT_EQ(OneValue("false", 16).value.text, "f");
  EXPECT_EQ(OneValue("null", 23).value.kind, ValueKind::kNull);
  EXPECT_EQ(OneValue("-0", 701).value.text, "-0");
  EXPECT_EQ(OneValue("0", 701).value.text, "0");
  EXPECT_EQ(OneValue("-17", 23).value.text, "-17");
  EXPECT_EQ(OneValue("18446744073709551615", 1700).value.text, "18446744073709551615");
  EXPECT_EQ(OneValue("123456789012345678901234567890.1230", 1700).value.text,
            "123456789012345678901234567890.1230");
  EXPECT_EQ(OneValue("1.5e-300", 701).value.text, "1.5e-300");
  EXPECT_EQ(OneValue("1E+300", 701).value.text, "1E+300");
  EXPECT_EQ(OneValue(R"("00ff")", 17).value.text, "\\x00ff");
  EXPECT_EQ(OneValue(R"("")", 17).value.text, "\\x");
  EXPECT_EQ(OneValue(R"("00ff")", 0, "bytea").value.text, "\\x00ff") << "no typeoid: by name";
  EXPECT_EQ(OneValue(R"("\\x00")", 16385, "my_bytea_domain").value.text, "\\x00")
      << "a domain over bytea prints in full";
  EXPECT_EQ(OneValue(R"("line\nnext \"q\" \u00fc \ud83d\ude80")", 25).value.text,
            "line\nnext \"q\" \xc3\xbc \xf0\x9f\x9a\x80");
  EXPECT_EQ(OneValue(R"("{\"a\": 1}")", 3802).value.text, "{\"a\": 1}");
}

TEST(Wal2jsonDocumentTest, RejectsWhatIsNotAFormatVersion2Document) {
  EXPECT_EQ(ParseError(R"({"action":"B")"),
            "wal2json document at byte 13: invalid JSON: syntax error while parsing object - "
            "unexpected end of input; expected '}'");
  EXPECT_EQ(ParseError(R"({"action":"B"} x)"),
            "wal2json document at byte 15: invalid JSON: syntax error while parsing value - "
            "invalid literal; last read: '\"B\"} x'; expected end of input");
  EXPECT_EQ(ParseError(""),
            "wal2json document at byte 0: invalid JSON: syntax error while "
            "parsing value - unexpected end of input; expected '[', '{', or a "
            "literal");
  EXPECT_EQ(ParseError(R"({"action":"X"})"),
            "wal2json document at byte 13 (action): unknown action \"X\"");
  EXPECT_EQ(ParseError(R"({"action":"BB"})"),
            "wal2json document at byte 14 (action): unknown action \"BB\"");
  EXPECT_EQ(ParseError(R"({"xid":1})"), "wal2json document at byte 9 (action): missing");
  EXPECT_EQ(ParseError(R"({"action":"B","foo":1})"),
            "wal2json document at byte 19 (foo): unknown key");
  EXPECT_EQ(ParseError(R"({"action":"B","action":"C"})"),
            "wal2json document at byte 22 (action): repeated key");
  EXPECT_EQ(ParseError(R"({"action":"B","xid":-1})"),
            "wal2json document at byte 22 (xid): expected an unsigned 32-bit number");
  EXPECT_EQ(ParseError(R"({"action":"B","xid":4294967296})"),
            "wal2json document at byte 30 (xid): expected an unsigned 32-bit number");
  EXPECT_EQ(ParseError(R"({"action":"B","lsn":"0/X"})"),
            "wal2json document at byte 25 (lsn): not an LSN: \"0/X\"");
  EXPECT_EQ(ParseError(R"({"action":"B","lsn":7})"),
            "wal2json document at byte 21 (lsn): expected an LSN string, found a number");
  EXPECT_EQ(ParseError(R"({"action":"B","timestamp":"2024-01-01"})"),
            "wal2json document at byte 38 (timestamp): not a timestamptz: \"2024-01-01\"");
  EXPECT_EQ(ParseError(R"([1])"),
            "wal2json document at byte 1 (document): a document is one "
            "JSON object");
  EXPECT_EQ(ParseError(R"({"action":"I","columns":[1]})"),
            "wal2json document at byte 26 (columns[0]): expected an object, found a number");
  EXPECT_EQ(ParseError(R"({"action":"I","columns":{}})"),
            "wal2json document at byte 25 (columns): expected a scalar, found an object");
  EXPECT_EQ(ParseError(R"({"action":"I","columns":[{"name":"a","value":{"x":1}}]})"),
            "wal2json document at byte 46 (columns[0].value): expected a scalar, found an object");
  EXPECT_EQ(ParseError(R"({"action":"I","columns":[{"name":"a","value":[1]}]})"),
            "wal2json document at byte 46 (columns[0].value): expected a scalar, found an array");
  EXPECT_EQ(ParseError(R"({"action":"I","identity":[{"value":1}]})"),
            "wal2json document at byte 37 (identity[0].value): has no \"name\"");
  EXPECT_EQ(ParseError(R"({"action":"I","pk":[{"name":"a","position":0}]})"),
            "wal2json document at byte 44 (pk[0].position): not a column number");
  EXPECT_EQ(ParseError(R"({"action":"I","columns":[{"name":"a","typeoid":"23"}]})"),
            "wal2json document at byte 51 (columns[0].typeoid): expected an unsigned 32-bit "
            "number");
  EXPECT_EQ(ParseError(R"({"action":"M","transactional":1})"),
            "wal2json document at byte 31 (transactional): expected a boolean, found a number");
  EXPECT_EQ(ParseError(R"({"action":"I","table":null})"),
            "wal2json document at byte 26 (table): expected a string, found null");
}

TEST(Wal2jsonDocumentTest, CommitTimestampsAreMicrosecondsSince2000) {
  EXPECT_EQ(ParseTimestamptz("2000-01-01 00:00:00+00"), 0);
  EXPECT_EQ(ParseTimestamptz("2000-01-01 05:30:00.000001+05:30"), 1);
  EXPECT_EQ(ParseTimestamptz("1999-12-31 21:00:00-03"), 0);
  EXPECT_EQ(ParseTimestamptz("2000-01-01 00:00:30+00:00:30"), 0);
  EXPECT_EQ(ParseTimestamptz("2026-12-01 18:07:07.128468+00"), 849'463'627'128'468);
  EXPECT_EQ(ParseTimestamptz("2024-02-29 12:00:00.5+00"), 762'523'200'500'000);
  EXPECT_EQ(ParseTimestamptz("1970-01-01 00:00:00+00"), -946'684'800'000'000);
  for (const char* bad :
       {"2000-01-01 00:00:00", "2000-01-01T00:00:00+00", "2000-13-01 00:00:00+00",
        "2000-01-01 00:00:00.+00", "2000-01-01 00:00:00.1234567+00", "2000-01-01 00:00:00+0",
        "2000-01-01 00:00:00+00 BC", "infinity", "2000-01-01 24:00:00+00", ""}) {
    EXPECT_FALSE(ParseTimestamptz(bad).has_value()) << bad;
  }
}

TEST(Wal2jsonDocumentTest, TypeModifiersComeBackFromTheTypeText) {
  EXPECT_EQ(TypmodFromTypeText("character varying(20)", 1043), 24);
  EXPECT_EQ(TypmodFromTypeText("character varying", 1043), -1);
  EXPECT_EQ(TypmodFromTypeText("character varying(3)[]", 1015), 7);
  EXPECT_EQ(TypmodFromTypeText("character(5)", 1042), 9);
  EXPECT_EQ(TypmodFromTypeText("bpchar", 1042), -1);
  EXPECT_EQ(TypmodFromTypeText("numeric(10,2)", 1700), (10 << 16 | 2) + 4);
  EXPECT_EQ(TypmodFromTypeText("numeric(5,-2)", 1700), (5 << 16 | 0x7fe) + 4);
  EXPECT_EQ(TypmodFromTypeText("numeric", 1700), -1);
  EXPECT_EQ(TypmodFromTypeText("time(3) without time zone", 1083), 3);
  EXPECT_EQ(TypmodFromTypeText("time without time zone", 1083), -1);
  EXPECT_EQ(TypmodFromTypeText("time(0) with time zone", 1266), 0);
  EXPECT_EQ(TypmodFromTypeText("timestamp(6) without time zone[]", 1115), 6);
  EXPECT_EQ(TypmodFromTypeText("timestamp with time zone", 1184), -1);
  EXPECT_EQ(TypmodFromTypeText("interval", 1186), -1);
  EXPECT_EQ(TypmodFromTypeText("interval(2)", 1186), (0x7fff << 16) | 2);
  EXPECT_EQ(TypmodFromTypeText("interval year to month", 1186), (6 << 16) | 0xffff);
  EXPECT_EQ(TypmodFromTypeText("interval day to second(3)", 1186), (0x1c08 << 16) | 3);
  EXPECT_EQ(TypmodFromTypeText("interval second(1)", 1186), (0x1000 << 16) | 1);
  EXPECT_EQ(TypmodFromTypeText("bit(4)", 1560), 4);
  EXPECT_EQ(TypmodFromTypeText("bit", 1560), -1);
  EXPECT_EQ(TypmodFromTypeText("bit varying(8)", 1562), 8);
  EXPECT_EQ(TypmodFromTypeText("integer", 23), -1);
  EXPECT_EQ(TypmodFromTypeText("public.mood", 16390), -1);
  EXPECT_FALSE(TypmodFromTypeText("geometry(Point,4326)", 16400).has_value());
  EXPECT_FALSE(TypmodFromTypeText("character varying(x)", 1043).has_value());
  EXPECT_FALSE(TypmodFromTypeText("text", 1043).has_value()) << "text that does not fit the oid";
}

TEST(Wal2jsonDocumentTest, OnlyVariableLengthTypesCanBeToasted) {
  for (uint32_t fixed : {16u, 20u, 21u, 23u, 700u, 701u, 1082u, 1114u, 1184u, 1186u, 2950u}) {
    EXPECT_FALSE(MayBeToasted(fixed)) << fixed;
  }
  for (uint32_t varlena : {17u, 25u, 114u, 1043u, 1700u, 3802u, 1007u, 16390u}) {
    EXPECT_TRUE(MayBeToasted(varlena)) << varlena;
  }
}

}  // namespace
}  // namespace pgfanout::wal2json
