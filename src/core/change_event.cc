#include "src/core/change_event.h"

#include <string_view>

namespace pgfanout {
namespace {

// FNV-1a, 64-bit: stable across builds and machines, unlike std::hash.
class Fnv1a {
 public:
  void Add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 1099511628211ull;
    }
    AddByte(0xff);  // separator, so ("ab","c") and ("a","bc") differ
  }
  void Add(uint64_t value) {
    for (int i = 0; i < 8; ++i) AddByte(static_cast<unsigned char>(value >> (8 * i)));
  }
  uint64_t hash() const { return hash_; }

 private:
  void AddByte(unsigned char c) {
    hash_ ^= c;
    hash_ *= 1099511628211ull;
  }
  uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace

uint64_t TableSchema::Fingerprint() const {
  Fnv1a h;
  h.Add(uint64_t{relation_id.value});
  h.Add(schema_name);
  h.Add(table_name);
  h.Add(uint64_t{static_cast<unsigned char>(replica_identity)});
  h.Add(uint64_t{columns.size()});
  for (const auto& c : columns) {
    h.Add(c.name);
    h.Add(uint64_t{c.type_oid});
    h.Add(static_cast<uint64_t>(static_cast<uint32_t>(c.type_modifier)));
    h.Add(uint64_t{c.part_of_key});
  }
  return h.hash();
}

}  // namespace pgfanout
