#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "decoders/pgoutput/messages.h"
#include "src/core/change_event.h"

namespace pgfanout::testing {

// Encoders that produce pgoutput bytes (one message, without the XLogData 'w' header):
// the exact inverse of pgoutput::Decode. For every `m` and `in_stream`,
// Decode(Encode(m, in_stream), in_stream) yields `m` back, and whenever Decode accepts
// some bytes, Encode of the result reproduces those bytes.
//
// Fields are written verbatim, invalid ones included (Commit.flags = 7, Delete.old_kind =
// 'X', Relation.replica_identity = '?'), so tests can also build malformed messages.
// Update.old_kind == 0 means "no old tuple"; any other value is written as the marker
// byte followed by old_tuple.
//
// `in_stream` says the message goes between Stream Start and Stream Stop: the messages
// that protocol v2 then prefixes with a transaction id get `m.xid` written after the
// type byte; otherwise `m.xid` is ignored.
std::string Encode(const pgoutput::Begin& m);
std::string Encode(const pgoutput::Commit& m);
std::string Encode(const pgoutput::Origin& m);
std::string Encode(const pgoutput::Relation& m, bool in_stream = false);
std::string Encode(const pgoutput::Type& m, bool in_stream = false);
std::string Encode(const pgoutput::Insert& m, bool in_stream = false);
std::string Encode(const pgoutput::Update& m, bool in_stream = false);
std::string Encode(const pgoutput::Delete& m, bool in_stream = false);
std::string Encode(const pgoutput::Truncate& m, bool in_stream = false);
std::string Encode(const pgoutput::LogicalMessage& m, bool in_stream = false);
std::string Encode(const pgoutput::StreamStart& m);
std::string Encode(const pgoutput::StreamStop& m);
std::string Encode(const pgoutput::StreamCommit& m);
std::string Encode(const pgoutput::StreamAbort& m);

// Any message; `in_stream` matters only for the kinds listed above.
std::string Encode(const pgoutput::Message& m, bool in_stream = false);

// Column values, for building tuples: {Text("1"), Null(), UnchangedToast()}.
Datum Text(std::string_view text);
Datum Null();
Datum UnchangedToast();

// A tuple of text values, the common case: TextTuple({"1", "alice"}).
pgoutput::Tuple TextTuple(std::initializer_list<std::string_view> values);

}  // namespace pgfanout::testing
