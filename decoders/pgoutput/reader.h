#pragma once

#include <string_view>

#include "decoders/pgoutput/messages.h"
#include "src/core/error.h"

namespace pgfanout::pgoutput {

// Decodes one pgoutput message (the payload of one XLogData, without the 'w' header).
//
// Contract: pure and strict. It never reads past `bytes`, and rejects with kDecode an
// unknown message type, an unknown tuple column kind, a flag or action byte it does not
// know, a truncated message, or trailing bytes; the error names the message type and the
// byte offset. `in_stream` says whether the message arrived between Stream Start and
// Stream Stop: protocol v2 then puts a transaction id before the body of Relation, Type,
// Insert, Update, Delete, Truncate and Message.
Result<Message> Decode(std::string_view bytes, bool in_stream);

}  // namespace pgfanout::pgoutput
