// Fuzz target: the pgoutput reader, decoders/pgoutput/reader.h Decode(bytes, in_stream).
// Build and run: see test/fuzz/README.md (`./dev fuzz`). Seeds: corpus/pgoutput/, messages
// captured from PostgreSQL 15 by capture_pgoutput_seeds.sh.
//
// Each input is decoded both outside and inside a streamed block. Besides "never crashes,
// never reads out of bounds" (the sanitizers), it asserts:
// - a rejection is kDecode and names the message ("pgoutput ..."), as the README promises;
// - whatever Decode accepts it understood completely: encoding the result
//   (test/support/pgoutput_builder.h) gives back the very same bytes;
// - messages that carry no xid prefix in a stream decode the same either way.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "decoders/pgoutput/reader.h"
#include "test/support/pgoutput_builder.h"

namespace {

using pgfanout::pgoutput::MsgType;

// The types protocol v2 prefixes with a transaction id between Stream Start and Stop.
bool HasStreamXid(char type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::kRelation:
    case MsgType::kType:
    case MsgType::kInsert:
    case MsgType::kUpdate:
    case MsgType::kDelete:
    case MsgType::kTruncate:
    case MsgType::kMessage:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool accepted[2] = {false, false};
  for (bool in_stream : {false, true}) {
    auto decoded = pgfanout::pgoutput::Decode(bytes, in_stream);
    if (!decoded) {
      const auto& error = decoded.error();
      if (error.kind != pgfanout::ErrorKind::kDecode) std::abort();
      if (error.message.rfind("pgoutput", 0) != 0) std::abort();
      continue;
    }
    accepted[in_stream] = true;
    if (pgfanout::testing::Encode(decoded.value(), in_stream) != bytes) std::abort();
  }
  if (!bytes.empty() && !HasStreamXid(bytes[0]) && accepted[0] != accepted[1]) std::abort();
  return 0;
}
