// libFuzzer entry point for the pgoutput reader. Not part of the meson build; from the
// repository root:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     test/fuzz/pgoutput_fuzz.cc decoders/pgoutput/reader.cc \
//     test/support/pgoutput_builder.cc src/core/lsn.cc -lfmt -o /tmp/pgoutput_fuzz
//   mkdir -p /tmp/pgoutput_corpus && /tmp/pgoutput_fuzz -max_total_time=60 /tmp/pgoutput_corpus
//
// Besides "never crashes, never reads out of bounds" (the sanitizers), it checks that
// whatever Decode accepts it understood completely: encoding the result gives back the
// very same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "decoders/pgoutput/reader.h"
#include "test/support/pgoutput_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (bool in_stream : {false, true}) {
    auto decoded = pgfanout::pgoutput::Decode(bytes, in_stream);
    if (!decoded) {
      if (decoded.error().kind != pgfanout::ErrorKind::kDecode) std::abort();
      continue;
    }
    if (pgfanout::testing::Encode(decoded.value(), in_stream) != bytes) std::abort();
  }
  return 0;
}
